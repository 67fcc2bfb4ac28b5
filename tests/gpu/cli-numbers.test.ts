// The numbers the CLI writes, as an independent implementation would check them: `eval --json` loss and
// `--save-grads` gradients, and the adapter after one SGD step of `train`, against the float64 reference.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { evalCommand } from '../../src/cli/commands/eval';
import { train } from '../../src/cli/commands/train';
import { adapterFiles } from '../../src/lora/adapter-io';
import { loraConfig } from '../../src/lora/config';
import type { Adapter } from '../../src/lora/config';
import { writeFolder } from '../../src/lora/fs-node';
import { uniform } from '../helpers/random';
import { readF32Safetensors, tinyModel, weights64, writeTinyModel } from '../helpers/tiny-models';
import type { TinyModel } from '../helpers/tiny-models';
import { compare } from '../helpers/tolerance';
import type { RefLora } from '../reference/model';
import { refForwardBackward } from '../reference/model';

const ROWS = [
  { input_ids: [1, 5, 9, 3, 7, 2], labels: [-100, -100, 9, 3, 7, 2] },
  { input_ids: [1, 4, 4, 8, 11, 13, 6, 2], labels: [1, 4, 4, 8, 11, 13, 6, 2] },
  { input_ids: [1, 12, 3], labels: [-100, -100, 3] },
];

function tmp(name: string): string {
  return mkdtempSync(join(tmpdir(), `${name}-`));
}

async function writeAdapter(
  m: TinyModel,
  targets: string[],
  r: number,
  alpha: number,
  rslora: boolean,
): Promise<[string, Adapter]> {
  const config = loraConfig({
    targetModules: [...new Set(targets.map((t) => t.split('.').pop()!))],
    r,
    loraAlpha: alpha,
    useRslora: rslora,
  });
  // Only the listed layers carry weights: restrict the config to them by full names (PEFT accepts full paths too).
  config.targetModules = targets;
  const tensors = new Map<string, { A: Float32Array; B: Float32Array; r: number; in: number; out: number }>();
  targets.forEach((mod, i) => {
    const w = m.tensors.get(`${mod}.weight`)!;
    const [inF, outF] = m.spec.arch === 'gpt2' ? w.shape : [w.shape[1], w.shape[0]];
    tensors.set(mod, {
      A: uniform(r * inF, 90 + i, 0.3),
      B: uniform(outF * r, 95 + i, 0.3),
      r,
      in: inF,
      out: outF,
    });
  });
  const adapter: Adapter = { config, tensors };
  const dir = tmp('adapter');
  await writeFolder(dir, adapterFiles(adapter));
  return [dir, adapter];
}

function reference(m: TinyModel, adapter: Adapter, scaling: number) {
  const T = Math.max(...ROWS.map((r) => r.input_ids.length));
  const ids: number[] = [];
  const labels: number[] = [];
  for (const r of ROWS) {
    ids.push(...r.input_ids, ...Array(T - r.input_ids.length).fill(0));
    // The pipeline never trains position 0 (nothing predicts it); the reference shifts, so it is ignored anyway.
    labels.push(...r.labels, ...Array(T - r.labels.length).fill(-100));
  }
  const lora = new Map<string, RefLora>(
    [...adapter.tensors].map(([k, t]) => [
      k,
      { A: Float64Array.from(t.A), B: Float64Array.from(t.B), r: t.r, scaling },
    ]),
  );
  return refForwardBackward(m.spec, weights64(m), lora, { B: ROWS.length, T, inputIds: ids, labels });
}

function captureLog(): { lines: string[] } {
  const out = { lines: [] as string[] };
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.lines.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation(() => {});
  return out;
}

afterEach(() => vi.restoreAllMocks());

const CASES = [
  {
    kind: 'llama3-untied' as const,
    targets: ['model.layers.0.self_attn.q_proj', 'model.layers.1.mlp.down_proj'],
    rslora: false,
  },
  {
    kind: 'qwen2' as const,
    targets: ['model.layers.0.self_attn.v_proj', 'model.layers.1.mlp.gate_proj'],
    rslora: true,
  },
  {
    kind: 'gpt2' as const,
    targets: ['transformer.h.0.attn.c_attn', 'transformer.h.1.mlp.c_fc'],
    rslora: false,
  },
];

describe('CLI numbers against the float64 reference', () => {
  for (const c of CASES) {
    it(`eval --json and --save-grads: ${c.kind}${c.rslora ? ' (rsLoRA)' : ''}`, async () => {
      const m = tinyModel(c.kind, 11);
      const modelDir = writeTinyModel(m);
      const [adapterDir, adapter] = await writeAdapter(m, c.targets, 4, 8, c.rslora);
      const data = join(tmp('data'), 'rows.jsonl');
      writeFileSync(data, ROWS.map((r) => JSON.stringify(r)).join('\n'));
      const grads = join(tmp('grads'), 'grads.safetensors');
      const log = captureLog();
      const code = await evalCommand.run(
        { model: modelDir, data, adapter: adapterDir, 'batch-size': '2', 'save-grads': grads, json: true },
        [],
      );
      expect(code).toBe(0);
      const got = JSON.parse(log.lines.at(-1)!) as { loss: number; ppl: number; tokens: number };
      const ref = reference(m, adapter, c.rslora ? 8 / 2 : 8 / 4);
      expect(got.tokens).toBe(ref.tokens);
      expect(Math.abs(got.loss - ref.lossSum / ref.tokens)).toBeLessThan(1e-5 * (ref.lossSum / ref.tokens));
      expect(Math.abs(got.ppl - Math.exp(ref.lossSum / ref.tokens))).toBeLessThan(1e-4 * got.ppl);
      const saved = readF32Safetensors(readFileSync(grads));
      for (const mod of c.targets) {
        const g = ref.grads.get(mod)!;
        const tol = { rel: 1e-4, abs: 1e-6 };
        expect(compare(saved.get(`base_model.model.${mod}.lora_A.weight`)!, g.dA, tol), mod).toBeNull();
        expect(compare(saved.get(`base_model.model.${mod}.lora_B.weight`)!, g.dB, tol), mod).toBeNull();
      }
    });
  }

  it('train: one SGD step (lr 1, whole file in one batch) moves the adapter by exactly the mean-loss gradient', async () => {
    const m = tinyModel('llama', 12);
    const modelDir = writeTinyModel(m);
    const targets = [
      'model.layers.0.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
      'model.layers.0.mlp.up_proj',
    ];
    const [adapterDir, adapter] = await writeAdapter(m, targets, 2, 4, false);
    const data = join(tmp('data'), 'rows.jsonl');
    writeFileSync(data, ROWS.map((r) => JSON.stringify(r)).join('\n'));
    const out = tmp('run');
    captureLog();
    const code = await train.run(
      {
        model: modelDir,
        data,
        out,
        'init-adapter': adapterDir,
        optim: 'sgd',
        lr: '1',
        'max-steps': '1',
        'max-grad-norm': '0',
        dropout: '0',
        scheduler: 'constant',
        'batch-size': '8',
        json: true,
      },
      [],
    );
    expect(code).toBe(0);
    const ref = reference(m, adapter, 4 / 2);
    const saved = readF32Safetensors(readFileSync(join(out, 'adapter_model.safetensors')));
    for (const mod of targets) {
      const t = adapter.tensors.get(mod)!;
      const g = ref.grads.get(mod)!;
      const wantA = Float64Array.from(t.A, (a, i) => a - g.dA[i]);
      const wantB = Float64Array.from(t.B, (b, i) => b - g.dB[i]);
      const tol = { rel: 1e-4, abs: 1e-6 };
      expect(compare(saved.get(`base_model.model.${mod}.lora_A.weight`)!, wantA, tol), mod).toBeNull();
      expect(compare(saved.get(`base_model.model.${mod}.lora_B.weight`)!, wantB, tol), mod).toBeNull();
    }
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toMatchObject({ step: 1, learning_rate: 1 });
    expect(Math.abs(metrics[0].loss - ref.lossSum / ref.tokens)).toBeLessThan(1e-5 * metrics[0].loss);
    const state = JSON.parse(readFileSync(join(out, 'trainer_state.json'), 'utf8'));
    expect(state.log_history[0]).toMatchObject({ step: 1, learning_rate: 1 });
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 2, lora_alpha: 4 });
  });
});
