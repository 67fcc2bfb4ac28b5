// `lora-studio data` end to end on the fixtures: report text and JSON, the token dump, and the error path.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { data } from '../../src/cli/commands/data';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';
import { fixtureTokenizer, tempFile } from './data-helpers';

const MODEL = () => fixture('models/stories260K-hf');

async function run(
  args: Record<string, string | boolean>,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const code = await data.run({ model: MODEL(), ...args }, []);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

afterEach(() => vi.restoreAllMocks());

describe.skipIf(!hasFixtures)(`lora-studio data${hasFixtures ? '' : ` (${NO_FIXTURES})`}`, () => {
  it('prints format, rows, skipped rows with line numbers, length statistics and trained tokens', async () => {
    const r = await run({ data: fixture('malformed/datasets/chat_truncated.jsonl') });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/format: chat \(detected from the columns\)/);
    expect(r.out).toMatch(/rows: 6 read, 5 used, 1 skipped/);
    expect(r.out).toMatch(/skipped line 6: not valid JSON/);
    expect(r.out).toMatch(/tokens per example: min [\d,]+, median [\d,]+, p95 [\d,]+, max [\d,]+, total \d/);
    expect(r.out).toMatch(/trained tokens: [\d,]+ \(/);
  });

  it('--json --max-len --packing --dump-tokens: packed rows with segments, truncation counted', async () => {
    const dump = tempFile('dump.jsonl', '');
    const r = await run({
      data: fixture('datasets/chat_sample.jsonl'),
      json: true,
      'max-len': '256',
      packing: true,
      'dump-tokens': dump,
    });
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out);
    expect(rep).toMatchObject({ format: 'chat', rowsRead: 383, detected: true });
    expect(rep.truncatedRows).toBeGreaterThan(0);
    expect(rep.rowsUsed + rep.skipped.length).toBe(383);
    expect(rep.lengths.max).toBe(256);
    const rows = readFileSync(dump, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(rep.packing.trainSequences);
    let trained = 0;
    for (const row of rows) {
      expect(row.input_ids.length).toBeLessThanOrEqual(256);
      expect(row.segment_ids).toHaveLength(row.input_ids.length);
      expect(row.position_ids[0]).toBe(0);
      trained += row.labels.filter((x: number) => x !== -100).length;
    }
    expect(trained).toBe(rep.trainedTokens);
  });

  it('dumps unpacked examples as input_ids + labels that decode back', async () => {
    const dump = tempFile('pc.jsonl', '');
    const src = tempFile('pc.csv', 'prompt,completion\nOnce upon a time,", there was a cat."\n');
    const r = await run({ data: src, 'dump-tokens': dump, json: true });
    expect(JSON.parse(r.out)).toMatchObject({ format: 'prompt-completion', kind: 'csv', rowsUsed: 1 });
    const [row] = readFileSync(dump, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const tok = fixtureTokenizer('stories260K-hf');
    expect(tok.decode(row.input_ids)).toBe('<s> Once upon a time, there was a cat.</s>');
    expect(tok.decode(row.labels.filter((x: number) => x !== -100))).toBe(', there was a cat.</s>');
  });

  it('--eval-split holds out a seeded fraction', async () => {
    const r = await run({
      data: fixture('datasets/prompt_completion_sample.jsonl'),
      json: true,
      'eval-split': '0.1',
      seed: '3',
    });
    const rep = JSON.parse(r.out);
    expect([rep.trainExamples, rep.evalExamples]).toEqual([872, 97]);
  });

  it('--format overrides detection; rows that do not fit are skipped with the reason', async () => {
    const r = await run({
      data: fixture('datasets/prompt_completion_sample.jsonl'),
      format: 'text',
      json: true,
    });
    const e = JSON.parse(r.out);
    expect(r.code).toBe(1);
    expect(e.error).toMatch(/no usable row: 969 read as text/);
    expect(e.skipped[0]).toEqual({ row: 1, line: 1, reason: 'missing field "text"' });
  });

  it('a file with no usable row exits 1 and lists every skipped row', async () => {
    const r = await run({ data: fixture('malformed/datasets/chat_bad_values.jsonl') });
    expect(r.code).toBe(1);
    expect(r.err.split('\n').filter((l) => l.includes('skipped line'))).toHaveLength(7);
    expect(r.err).toMatch(/error: chat_bad_values\.jsonl: no usable row/);
  });

  it('usage errors say what is wrong', async () => {
    await expect(run({ data: 'x.jsonl', format: 'yaml' })).rejects.toThrow(/unknown format "yaml"/);
    await expect(run({ data: 'x.jsonl', packing: true })).rejects.toThrow(/--packing needs --max-len/);
    const r = await run({ data: '/nonexistent/x.jsonl' });
    expect([r.code, r.err]).toEqual([1, 'error: /nonexistent/x.jsonl: no such file']);
  });
});
