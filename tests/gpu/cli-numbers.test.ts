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

describe('train: AdamW steps against a float64 replay', () => {
  it('three AdamW steps with weight decay and clipping, whole file in one batch', async () => {
    const m = tinyModel('qwen2', 13);
    const modelDir = writeTinyModel(m);
    const targets = ['model.layers.0.self_attn.k_proj', 'model.layers.1.mlp.down_proj'];
    const [adapterDir, adapter] = await writeAdapter(m, targets, 2, 4, false);
    const data = join(tmp('data'), 'rows.jsonl');
    writeFileSync(data, ROWS.map((r) => JSON.stringify(r)).join('\n'));
    const out = tmp('run');
    const [lr, wd, b1, b2, eps, maxNorm] = [0.02, 0.1, 0.9, 0.999, 1e-8, 0.5];
    captureLog();
    const code = await train.run(
      {
        model: modelDir,
        data,
        out,
        'init-adapter': adapterDir,
        optim: 'adamw',
        lr: String(lr),
        'weight-decay': String(wd),
        'max-grad-norm': String(maxNorm),
        'max-steps': '3',
        scheduler: 'constant',
        'batch-size': '8',
        json: true,
      },
      [],
    );
    expect(code).toBe(0);

    // The float64 replay: reference gradients at the current weights, global-norm clipping, torch's AdamW.
    const cur = new Map(
      [...adapter.tensors].map(([k, t]) => [
        k,
        { ...t, A: Float64Array.from(t.A), B: Float64Array.from(t.B) },
      ]),
    );
    const mom = new Map(
      [...cur].map(([k, t]) => [
        k,
        {
          mA: new Float64Array(t.A.length),
          vA: new Float64Array(t.A.length),
          mB: new Float64Array(t.B.length),
          vB: new Float64Array(t.B.length),
        },
      ]),
    );
    const norms: number[] = [];
    for (let step = 1; step <= 3; step++) {
      const exact = refForwardBackward(
        m.spec,
        weights64(m),
        new Map([...cur].map(([k, t]) => [k, { A: t.A, B: t.B, r: t.r, scaling: 2 }])),
        {
          B: ROWS.length,
          T: 8,
          inputIds: ROWS.flatMap((r) => [...r.input_ids, ...Array(8 - r.input_ids.length).fill(0)]),
          labels: ROWS.flatMap((r) => [...r.labels, ...Array(8 - r.labels.length).fill(-100)]),
        },
      );
      let sq = 0;
      for (const g of exact.grads.values()) for (const arr of [g.dA, g.dB]) for (const x of arr) sq += x * x;
      const norm = Math.sqrt(sq);
      norms.push(norm);
      const clip = norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
      for (const [k, t] of cur) {
        const g = exact.grads.get(k)!;
        const s = mom.get(k)!;
        for (const [p, grad, mm, vv] of [
          [t.A, g.dA, s.mA, s.vA],
          [t.B, g.dB, s.mB, s.vB],
        ] as const) {
          for (let i = 0; i < p.length; i++) {
            const gi = grad[i] * clip;
            p[i] -= lr * wd * p[i];
            mm[i] = b1 * mm[i] + (1 - b1) * gi;
            vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
            p[i] -= (lr * (mm[i] / (1 - b1 ** step))) / (Math.sqrt(vv[i] / (1 - b2 ** step)) + eps);
          }
        }
      }
    }
    const saved = readF32Safetensors(readFileSync(join(out, 'adapter_model.safetensors')));
    for (const [mod, t] of cur) {
      const tol = { rel: 1e-4, abs: 1e-6 };
      expect(compare(saved.get(`base_model.model.${mod}.lora_A.weight`)!, t.A, tol), mod).toBeNull();
      expect(compare(saved.get(`base_model.model.${mod}.lora_B.weight`)!, t.B, tol), mod).toBeNull();
    }
    const logged = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(logged.map((l) => l.step)).toEqual([1, 2, 3]);
    logged.forEach((l, i) => expect(Math.abs(l.grad_norm - norms[i])).toBeLessThan(1e-4 * norms[i]));
    expect(norms.some((n) => n > maxNorm)).toBe(true); // clipping was exercised
  });
});

describe('train: accumulation and resume change nothing', () => {
  const base = (m: TinyModel) => {
    const modelDir = writeTinyModel(m);
    const data = join(tmp('data'), 'rows.jsonl');
    const rows = Array.from({ length: 8 }, (_, i) => ({
      input_ids: [1, 3 + i, 5 + ((i * 3) % 7), 9, 2 + i, 4],
      labels: [-100, -100, 5 + ((i * 3) % 7), 9, 2 + i, 4],
    }));
    writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n'));
    return { modelDir, data };
  };
  const flags = (modelDir: string, data: string, out: string) => ({
    model: modelDir,
    data,
    out,
    target: 'q_proj,v_proj,down_proj',
    r: '4',
    alpha: '8',
    lr: '0.01',
    'weight-decay': '0.01',
    scheduler: 'cosine',
    'warmup-steps': '1',
    epochs: '2',
    seed: '7',
    json: true,
  });
  const adapterOf = (out: string) => readF32Safetensors(readFileSync(join(out, 'adapter_model.safetensors')));

  it('batch 4 × accumulation 2 gives the adapter of batch 8 × 1 (no shuffle across the step)', async () => {
    const m = tinyModel('llama', 14);
    const { modelDir, data } = base(m);
    captureLog();
    const big = tmp('big');
    const small = tmp('small');
    expect(await train.run({ ...flags(modelDir, data, big), 'batch-size': '8', 'grad-accum': '1' }, [])).toBe(
      0,
    );
    expect(
      await train.run({ ...flags(modelDir, data, small), 'batch-size': '4', 'grad-accum': '2' }, []),
    ).toBe(0);
    const a = adapterOf(big);
    const b = adapterOf(small);
    for (const [k, v] of a) expect(compare(b.get(k)!, v, { rel: 1e-5, abs: 1e-7 }), k).toBeNull();
  });

  it('a run resumed from its step-2 checkpoint (dropout on) ends with the same adapter', async () => {
    const m = tinyModel('gpt2', 15);
    const { modelDir, data } = base(m);
    captureLog();
    const f = {
      ...flags(modelDir, data, ''),
      target: 'c_attn,c_fc',
      dropout: '0.1',
      'batch-size': '2',
      'save-steps': '2',
    };
    const full = tmp('full');
    expect(await train.run({ ...f, out: full }, [])).toBe(0);
    const resumed = tmp('resumed');
    expect(await train.run({ ...f, out: resumed }, [])).toBe(0);
    // Simulate a crash after step 2: keep only checkpoint-2 and the metrics up to it, then resume.
    const { rmSync, readdirSync } = await import('node:fs');
    for (const e of readdirSync(resumed))
      if (e !== 'checkpoint-2' && e !== 'metrics.jsonl') rmSync(join(resumed, e), { recursive: true });
    expect(await train.run({ ...f, out: resumed, resume: true }, [])).toBe(0);
    const a = adapterOf(full);
    const b = adapterOf(resumed);
    for (const [k, v] of a) expect(Array.from(b.get(k)!), k).toEqual(Array.from(v));
    const fields = (out: string) =>
      readFileSync(join(out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map(({ step, epoch, loss, grad_norm, learning_rate, tokens }) => ({
          step,
          epoch,
          loss,
          grad_norm,
          learning_rate,
          tokens,
        }));
    expect(fields(resumed)).toEqual(fields(full));
  });
});
