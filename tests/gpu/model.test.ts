// The whole GPU model against the float64 reference: loss and every LoRA gradient of random tiny Llama (with
// llama3 rope scaling, untied head), Qwen2 (biases, GQA) and GPT-2, with and without checkpointing and packing.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { loraConfig } from '../../src/lora/config';
import type { Adapter } from '../../src/lora/config';
import { uploadAdapter } from '../../src/lora/gpu';
import { Decoder } from '../../src/model/decoder';
import { loadModel } from '../../src/model/load';
import { FolderSource } from '../../src/model/sources/folder';
import { trainedTokens } from '../../src/model/trainable';
import type { Batch } from '../../src/model/trainable';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare, relL2 } from '../helpers/tolerance';
import { tinyModel, weights64, writeTinyModel } from '../helpers/tiny-models';
import type { RefLora } from '../reference/model';
import { refForwardBackward } from '../reference/model';

/** A random adapter (B non-zero, so that dA is not trivially zero) on the given modules. */
function randomAdapter(
  m: ReturnType<typeof tinyModel>,
  targets: string[],
  r: number,
  alpha: number,
  rslora = false,
): Adapter {
  const config = loraConfig({
    targetModules: targets.map((t) => t.split('.').pop()!),
    r,
    loraAlpha: alpha,
    useRslora: rslora,
  });
  const tensors = new Map<string, { A: Float32Array; B: Float32Array; r: number; in: number; out: number }>();
  targets.forEach((mod, i) => {
    const w = m.tensors.get(`${mod}.weight`)!;
    const [inF, outF] = m.spec.arch === 'gpt2' ? w.shape : [w.shape[1], w.shape[0]];
    tensors.set(mod, {
      A: uniform(r * inF, 70 + i, 0.3),
      B: uniform(outF * r, 80 + i, 0.3),
      r,
      in: inF,
      out: outF,
    });
  });
  return { config, tensors };
}

function refLora(adapter: Adapter, scaling: number): Map<string, RefLora> {
  return new Map(
    [...adapter.tensors].map(([k, t]) => [
      k,
      { A: Float64Array.from(t.A), B: Float64Array.from(t.B), r: t.r, scaling },
    ]),
  );
}

const BATCH: Batch = {
  B: 2,
  T: 7,
  inputIds: Int32Array.from([3, 7, 1, 9, 4, 4, 5, 2, 8, 8, 3, 0, 11, 12]),
  labels: Int32Array.from([3, 7, -100, 9, 4, 4, 5, -100, -100, 8, 3, 0, 11, 12]),
};

async function gpuLossAndGrads(
  ctx: GpuContext,
  dir: string,
  adapter: Adapter,
  batch: Batch,
  gradCheckpointing: boolean,
) {
  const model = await loadModel(ctx, new FolderSource(dir));
  const lora = uploadAdapter(ctx, adapter);
  const dec = new Decoder(ctx, model, lora, { gradCheckpointing });
  const lossSum = ctx.zeros([1], 'f32', 'loss');
  const tokens = trainedTokens(batch);
  dec.forwardBackward(batch, { gradScale: 1 / tokens, lossSum, dropoutStep: 0 });
  const loss = (await ctx.read(lossSum))[0];
  const grads = new Map<string, { dA: Float32Array; dB: Float32Array }>();
  for (const p of lora) grads.set(p.module, { dA: await ctx.read(p.gradA), dB: await ctx.read(p.gradB) });
  for (const p of lora) for (const t of [p.A, p.B, p.gradA, p.gradB]) t.dispose();
  lossSum.dispose();
  model.dispose();
  return { loss, grads, tokens };
}

const CASES = [
  {
    kind: 'llama' as const,
    targets: [
      'model.layers.0.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
      'model.layers.0.mlp.down_proj',
      'model.layers.1.mlp.up_proj',
    ],
  },
  {
    kind: 'llama3-untied' as const,
    targets: [
      'model.layers.0.self_attn.k_proj',
      'model.layers.1.self_attn.o_proj',
      'model.layers.1.mlp.gate_proj',
    ],
  },
  {
    kind: 'qwen2' as const,
    targets: [
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.k_proj',
      'model.layers.1.self_attn.v_proj',
      'model.layers.1.mlp.down_proj',
    ],
  },
  {
    kind: 'gpt2' as const,
    targets: [
      'transformer.h.0.attn.c_attn',
      'transformer.h.1.attn.c_proj',
      'transformer.h.0.mlp.c_fc',
      'transformer.h.1.mlp.c_proj',
    ],
  },
];

// NOTE: the loss is a sum over tokens of f32 log-sum-exps; gradients pass through two layers of f32 kernels.
// Relative 1e-4 (the standard the engine is judged by), with an absolute floor of 1e-6 for entries near zero.
const TOL = { rel: 1e-4, abs: 1e-6 };

describe('whole model vs float64 reference', () => {
  for (const { kind, targets } of CASES) {
    for (const rslora of kind === 'llama' ? [false, true] : [false]) {
      it(`${kind}${rslora ? ' rsLoRA' : ''}: loss and every LoRA gradient`, async () => {
        const ctx = await testGpu();
        const m = tinyModel(kind, 5);
        const dir = writeTinyModel(m);
        const r = 4;
        const alpha = 8;
        const adapter = randomAdapter(m, targets, r, alpha, rslora);
        const scaling = rslora ? alpha / Math.sqrt(r) : alpha / r;
        const ref = refForwardBackward(m.spec, weights64(m), refLora(adapter, scaling), BATCH);
        const got = await gpuLossAndGrads(ctx, dir, adapter, BATCH, false);
        expect(got.tokens).toBe(ref.tokens);
        expect(Math.abs(got.loss - ref.lossSum)).toBeLessThan(1e-4 * Math.abs(ref.lossSum));
        for (const mod of targets) {
          const g = got.grads.get(mod)!;
          const w = ref.grads.get(mod)!;
          expect(compare(g.dA, w.dA, TOL), `${mod} dA`).toBeNull();
          expect(compare(g.dB, w.dB, TOL), `${mod} dB`).toBeNull();
        }
      });
    }
  }

  it('gradient checkpointing gives the same gradients', async () => {
    const ctx = await testGpu();
    const m = tinyModel('qwen2', 6);
    const dir = writeTinyModel(m);
    const adapter = randomAdapter(m, CASES[2].targets, 2, 4);
    const off = await gpuLossAndGrads(ctx, dir, adapter, BATCH, false);
    const on = await gpuLossAndGrads(ctx, dir, adapter, BATCH, true);
    expect(on.loss).toBe(off.loss);
    for (const [mod, g] of off.grads) {
      expect(Array.from(on.grads.get(mod)!.dA)).toEqual(Array.from(g.dA));
      expect(Array.from(on.grads.get(mod)!.dB)).toEqual(Array.from(g.dB));
    }
  });

  it('packing: two examples in one row give the same loss and gradients as two rows', async () => {
    const ctx = await testGpu();
    const m = tinyModel('llama', 7);
    const dir = writeTinyModel(m);
    const adapter = randomAdapter(m, CASES[0].targets, 2, 4);
    const a = [3, 7, 1, 9, 4];
    const b = [5, 2, 8];
    const padded: Batch = {
      B: 2,
      T: 5,
      inputIds: Int32Array.from([...a, ...b, 0, 0]),
      labels: Int32Array.from([...a, ...b, -100, -100]),
    };
    const packed: Batch = {
      B: 1,
      T: 8,
      inputIds: Int32Array.from([...a, ...b]),
      labels: Int32Array.from([...a, ...b]),
      positionIds: Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2]),
      segmentIds: Int32Array.from([0, 0, 0, 0, 0, 1, 1, 1]),
    };
    const p = await gpuLossAndGrads(ctx, dir, adapter, padded, false);
    const q = await gpuLossAndGrads(ctx, dir, adapter, packed, false);
    expect(Math.abs(p.loss - q.loss)).toBeLessThan(1e-5 * Math.abs(p.loss));
    for (const [mod, g] of p.grads) {
      expect(relL2(q.grads.get(mod)!.dA, g.dA), `${mod} dA`).toBeLessThan(1e-5);
      expect(relL2(q.grads.get(mod)!.dB, g.dB), `${mod} dB`).toBeLessThan(1e-5);
    }
  });
});

describe('memory', () => {
  it('a training step returns every buffer it takes: live bytes and buffer count back to baseline', async () => {
    const ctx = await testGpu();
    const m = tinyModel('qwen2', 8);
    const model = await loadModel(ctx, new FolderSource(writeTinyModel(m)));
    const lora = uploadAdapter(ctx, randomAdapter(m, CASES[2].targets, 2, 4));
    const lossSum = ctx.zeros([1], 'f32', 'loss');
    for (const gradCheckpointing of [false, true]) {
      const dec = new Decoder(ctx, model, lora, { gradCheckpointing, dropout: 0.1 });
      const step = (i: number) => dec.forwardBackward(BATCH, { gradScale: 0.1, lossSum, dropoutStep: i });
      step(0); // first use creates per-context caches (the RoPE table)
      await ctx.sync();
      const base = ctx.pool.snapshot();
      for (let i = 1; i <= 3; i++) {
        step(i);
        dec.forwardLoss(BATCH, lossSum);
        await ctx.sync();
        const now = ctx.pool.snapshot();
        expect([now.liveBuffers, now.liveBytes]).toEqual([base.liveBuffers, base.liveBytes]);
      }
    }
    model.dispose();
  });
});
