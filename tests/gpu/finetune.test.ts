// A short real fine-tune of the pretrained fixture on fixture data through the CLI: the eval loss must fall.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { evalCommand } from '../../src/cli/commands/eval';
import { train } from '../../src/cli/commands/train';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';

afterEach(() => vi.restoreAllMocks());

function capture(): string[] {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation(() => {});
  return lines;
}

it.skipIf(!hasFixtures)(
  `stories260K learns a new style of completion: eval loss falls ${hasFixtures ? '' : NO_FIXTURES}`,
  async () => {
    // A style the model never saw: every completion is the prompt's subject, shouted. 24 train rows, 8 held out.
    const rows = readFileSync(fixture('datasets/prompt_completion_sample.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .slice(0, 32)
      .map((l) => JSON.parse(l) as { prompt: string; completion: string })
      .map((r) => ({
        prompt: r.prompt,
        completion: ` THE END. ${r.prompt.split(' ').slice(0, 3).join(' ').toUpperCase()}!`,
      }));
    const dir = mkdtempSync(join(tmpdir(), 'finetune-'));
    const trainFile = join(dir, 'train.jsonl');
    const evalFile = join(dir, 'eval.jsonl');
    writeFileSync(
      trainFile,
      rows
        .slice(0, 24)
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    writeFileSync(
      evalFile,
      rows
        .slice(24)
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    const model = fixture('models/stories260K-hf');

    let lines = capture();
    expect(await evalCommand.run({ model, data: evalFile, 'max-len': '64', json: true }, [])).toBe(0);
    const before = JSON.parse(lines.at(-1)!).loss as number;
    vi.restoreAllMocks();

    lines = capture();
    const out = join(dir, 'run');
    const code = await train.run(
      {
        model,
        data: trainFile,
        'eval-data': evalFile,
        out,
        target: 'all-linear',
        r: '8',
        alpha: '16',
        lr: '3e-3',
        scheduler: 'cosine',
        'warmup-steps': '1',
        'batch-size': '8',
        'max-steps': '12',
        'eval-steps': '6',
        'max-len': '64',
        seed: '1',
        json: true,
      },
      [],
    );
    expect(code).toBe(0);
    const events = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const evals = events.filter((e) => e.type === 'eval').map((e) => e.eval_loss as number);
    const steps = events.filter((e) => e.type === 'step');
    console.warn(
      `fine-tune: eval loss ${before.toFixed(4)} → ${evals.map((x) => x.toFixed(4)).join(' → ')}; ` +
        `train loss ${steps[0].loss.toFixed(4)} → ${steps.at(-1).loss.toFixed(4)}; ${steps.at(-1).tokens_per_second.toFixed(0)} tokens/s`,
    );
    expect(steps).toHaveLength(12);
    expect(evals.length).toBeGreaterThanOrEqual(2);
    expect(evals.at(-1)!).toBeLessThan(before * 0.8);
    expect(evals.at(-1)!).toBeLessThan(evals[0]);
  },
  600_000,
);
