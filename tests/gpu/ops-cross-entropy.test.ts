// LM head + cross-entropy against the float64 reference: chunking, split and 16-bit heads, ignored rows, huge
// logits, loss accumulation, and the reference gradient by finite differences.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import type { DType } from '../../src/gpu/dtype';
import type { Weight } from '../../src/gpu/weight';
import { IGNORE_INDEX, lmHeadLogits, lmHeadLoss } from '../../src/ops/cross-entropy';
import { checkGradient } from '../helpers/finite-diff';
import { testGpu } from '../helpers/gpu';
import { rng, uniform } from '../helpers/random';
import { compare, F32 } from '../helpers/tolerance';
import { lmHeadLogitsRef, lmHeadLossRef } from '../reference/ops';

// NOTE: logits are f32 dot products over C (matmul's accumulation, ~1e-7 relative per term); the loss sums rows and
// dHidden sums V terms of (softmax − onehot)·W that cancel to ~0, so both get matmul's abs floor, scaled by size.
const lossTol = (N: number) => ({ rel: 1e-5, abs: 1e-6 * N });
const gradTol = (scale: number) => ({ rel: 1e-4, abs: 1e-6 * scale });

/** bf16 by truncation, and the values it stands for. */
function bf16(a: Float32Array): { bits: Uint16Array; wide: Float32Array } {
  const bits = new Uint16Array(new Uint32Array(a.buffer.slice(0)).map((w) => w >>> 16));
  return { bits, wide: new Float32Array(new Uint32Array(bits).map((h) => h << 16).buffer) };
}

function headOf(
  ctx: GpuContext,
  w: Float32Array,
  V: number,
  C: number,
  dtype: DType,
  rowsPerPart: number,
): Weight {
  const parts = [];
  for (let r0 = 0; r0 < V; r0 += rowsPerPart) {
    const slice = w.slice(r0 * C, Math.min(V, r0 + rowsPerPart) * C);
    const data = dtype === 'bf16' ? bf16(slice).bits : slice;
    parts.push(ctx.upload(data, [Math.min(rowsPerPart, V - r0), C], dtype, `lm_head[${r0}]`));
  }
  return { name: 'lm_head.weight', shape: [V, C], dtype, parts, rowsPerPart };
}

/** Targets in [0, V) with about a third ignored. */
function targetsOf(N: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: N }, () => (r() < 0.3 ? IGNORE_INDEX : Math.floor(r() * V)));
}

interface Case {
  N: number;
  C: number;
  V: number;
  chunkRows?: number;
  rowsPerPart?: number;
  dtype?: DType;
}

const CASES: Case[] = [
  { N: 1, C: 1, V: 2 },
  { N: 3, C: 7, V: 37 },
  { N: 33, C: 65, V: 257, chunkRows: 8 },
  { N: 33, C: 7, V: 300, chunkRows: 5, rowsPerPart: 128 },
  { N: 3, C: 65, V: 37, rowsPerPart: 10, dtype: 'bf16' },
  { N: 7, C: 257, V: 65, chunkRows: 1, rowsPerPart: 64, dtype: 'bf16' },
];

describe('lmHeadLoss', () => {
  for (const { N, C, V, chunkRows, rowsPerPart = V, dtype = 'f32' } of CASES) {
    const name = `N=${N} C=${C} V=${V}${chunkRows ? ` chunks of ${chunkRows}` : ''} ${Math.ceil(V / rowsPerPart)} ${dtype} part(s)`;
    it(name, async () => {
      const ctx = await testGpu();
      const hidden = uniform(N * C, N + C, 2);
      const w = uniform(V * C, V + C);
      const wide = dtype === 'bf16' ? bf16(w).wide : w;
      const targets = targetsOf(N, V, N * V);
      targets[0] = N > 1 ? IGNORE_INDEX : 0;
      const H = ctx.upload(hidden, [N, C], 'f32', 'hidden');
      const head = headOf(ctx, w, V, C, dtype, rowsPerPart);
      const T = ctx.upload(targets, [N], 'i32', 'targets');
      const lossSum = ctx.upload(new Float32Array([0.5]), [1], 'f32', 'loss_sum');
      const gradScale = 1 / 3;
      const dH = lmHeadLoss(ctx, H, head, T, { gradScale, lossSum, wantGrad: true, chunkRows });
      const ref = lmHeadLossRef(hidden, wide, targets, N, C, V, gradScale);
      expect(compare(await ctx.read(lossSum), [0.5 + ref.loss], lossTol(N))).toBeNull();
      expect(compare(await ctx.read(dH!), ref.dHidden, gradTol(1))).toBeNull();
      // Without the gradient: the same loss is added again, and nothing is returned.
      expect(lmHeadLoss(ctx, H, head, T, { gradScale, lossSum, wantGrad: false, chunkRows })).toBeNull();
      expect(compare(await ctx.read(lossSum), [0.5 + 2 * ref.loss], lossTol(2 * N))).toBeNull();
      expect(compare(await ctx.read(lmHeadLogits(ctx, H, head)), ref.logits, lossTol(C))).toBeNull();
    });
  }

  it('gives loss 0 and gradient 0 when every target is ignored', async () => {
    const ctx = await testGpu();
    const [N, C, V] = [5, 7, 11];
    const head = headOf(ctx, uniform(V * C, 1), V, C, 'f32', 4);
    const H = ctx.upload(uniform(N * C, 2), [N, C], 'f32', 'hidden');
    const T = ctx.upload(new Int32Array(N).fill(IGNORE_INDEX), [N], 'i32', 'targets');
    const lossSum = ctx.zeros([1], 'f32', 'loss_sum');
    const dH = lmHeadLoss(ctx, H, head, T, { gradScale: 1, lossSum, wantGrad: true, chunkRows: 2 });
    expect(Array.from(await ctx.read(lossSum))).toEqual([0]);
    expect((await ctx.read(dH!)).every((v) => v === 0)).toBe(true);
  });

  it('stays finite and accurate for logits of ±1e4', async () => {
    const ctx = await testGpu();
    const [N, C, V] = [4, 8, 33];
    // Integer-valued hidden and weights: the logits are exact integers up to ±1e4 in f32, as in the reference.
    const hidden = Float32Array.from(uniform(N * C, 3, 50), Math.round);
    const w = Float32Array.from(uniform(V * C, 4, 50), Math.round);
    const targets = Int32Array.from([0, 5, 32, IGNORE_INDEX]);
    const head = headOf(ctx, w, V, C, 'f32', V);
    const lossSum = ctx.zeros([1], 'f32', 'loss_sum');
    const H = ctx.upload(hidden, [N, C], 'f32', 'hidden');
    const dH = lmHeadLoss(ctx, H, head, ctx.upload(targets, [N], 'i32', 't'), {
      gradScale: 1,
      lossSum,
      wantGrad: true,
    });
    const ref = lmHeadLossRef(hidden, w, targets, N, C, V, 1);
    expect(Math.max(...Array.from(ref.logits, Math.abs))).toBeGreaterThan(3000);
    const loss = await ctx.read(lossSum);
    const grad = await ctx.read(dH!);
    expect(Number.isFinite(loss[0]) && grad.every(Number.isFinite)).toBe(true);
    // NOTE: the loss is a difference of logits of size ~1e4: f32 rounds lse to ~1e-3 absolute, hence rel 1e-6 of
    // the logits' size as the floor.
    expect(compare(loss, [ref.loss], { rel: 1e-5, abs: 1e4 * 1e-6 })).toBeNull();
    expect(compare(grad, ref.dHidden, gradTol(50))).toBeNull();
  });

  it('reference gradient matches finite differences', () => {
    const [N, C, V] = [3, 5, 7];
    const hidden = uniform(N * C, 5, 2);
    const w = uniform(V * C, 6);
    const targets = [2, IGNORE_INDEX, 6];
    const { dHidden } = lmHeadLossRef(hidden, w, targets, N, C, V, 0.25);
    const f = (h: Float64Array) => 0.25 * lmHeadLossRef(h, w, targets, N, C, V, 0.25).loss;
    expect(checkGradient(f, hidden, dHidden)).toBeNull();
  });

  it('logits of a split head match the reference', async () => {
    const ctx = await testGpu();
    const [N, C, V] = [3, 9, 70];
    const hidden = uniform(N * C, 7);
    const w = uniform(V * C, 8);
    const got = await ctx.read(
      lmHeadLogits(ctx, ctx.upload(hidden, [N, C], 'f32', 'h'), headOf(ctx, w, V, C, 'f32', 32)),
    );
    expect(compare(got, lmHeadLogitsRef(hidden, w, N, C, V), F32)).toBeNull();
  });

  it('names the tensor whose shape is wrong', async () => {
    const ctx = await testGpu();
    const head = headOf(ctx, uniform(12, 1), 4, 3, 'f32', 4);
    const H = ctx.zeros([2, 3], 'f32', 'hidden');
    const lossSum = ctx.zeros([1], 'f32', 'loss_sum');
    const T = ctx.zeros([3], 'i32', 'labels');
    expect(() => lmHeadLoss(ctx, H, head, T, { gradScale: 1, lossSum, wantGrad: false })).toThrow(
      /targets.*\[2\]/,
    );
    expect(() => lmHeadLogits(ctx, ctx.zeros([2, 5], 'f32', 'h'), head)).toThrow(/lm_head\.weight/);
  });
});
