// RMSNorm and LayerNorm against the float64 reference: odd sizes, extreme rows, 16-bit weights, and backward
// checked against the reference gradient, itself checked by finite differences.
import { describe, expect, it } from 'vitest';
import { layerNormBackward, layerNormForward, rmsNormBackward, rmsNormForward } from '../../src/ops/norm';
import { checkGradient, dot } from '../helpers/finite-diff';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare, F32 } from '../helpers/tolerance';
import { layerNormBackwardRef, layerNormRef, rmsNormBackwardRef, rmsNormRef } from '../reference/ops';

const SIZES: [number, number][] = [
  [1, 1],
  [3, 7],
  [33, 65],
  [3, 257],
  [1, 257],
  [33, 1],
];
const EPS = 1e-5;

/** Weights near 1 as in trained checkpoints, with some sign flips. */
const weightOf = (C: number, seed: number) => uniform(C, seed).map((v) => 1 + v * 0.5 * Math.sign(v));

/** bf16 by truncation, and the f32 values it stands for (what the kernel sees). */
function toBf16(a: Float32Array): { bits: Uint16Array; wide: Float32Array } {
  const bits = new Uint16Array(new Uint32Array(a.buffer.slice(0)).map((w) => w >>> 16));
  return { bits, wide: new Float32Array(new Uint32Array(bits).map((h) => h << 16).buffer) };
}

describe('rmsNorm', () => {
  for (const [N, C] of SIZES) {
    it(`forward and backward, N=${N} C=${C}`, async () => {
      const ctx = await testGpu();
      const x = uniform(N * C, N * 100 + C, 3);
      const w = weightOf(C, C);
      const dy = uniform(N * C, C + 7);
      const X = ctx.upload(x, [N, C], 'f32', 'x');
      const W = ctx.upload(w, [C], 'f32', 'w');
      const DY = ctx.upload(dy, [N, C], 'f32', 'dy');
      const { y, rstd } = rmsNormForward(ctx, X, W, EPS);
      const dx = rmsNormBackward(ctx, X, W, rstd, DY);
      const ref = rmsNormRef(x, w, N, C, EPS);
      expect(compare(await ctx.read(y), ref.y, F32)).toBeNull();
      expect(compare(await ctx.read(rstd), ref.rstd, F32)).toBeNull();
      expect(compare(await ctx.read(dx), rmsNormBackwardRef(x, w, dy, N, C, EPS), F32)).toBeNull();
      for (const t of [X, W, DY, y, rstd, dx]) t.dispose();
    });
  }

  it('reference gradient matches finite differences', () => {
    const [N, C] = [3, 7];
    const x = uniform(N * C, 1, 2);
    const w = weightOf(C, 2);
    const dy = uniform(N * C, 3);
    const f = (xs: Float64Array) => dot(dy, rmsNormRef(xs, w, N, C, EPS).y);
    expect(checkGradient(f, x, rmsNormBackwardRef(x, w, dy, N, C, EPS))).toBeNull();
  });

  it('handles huge, tiny and zero rows, and a bf16 weight', async () => {
    const ctx = await testGpu();
    const C = 65;
    const rows = [uniform(C, 1, 1e15), uniform(C, 2, 1e-3), new Float32Array(C), uniform(C, 3, 30)];
    const N = rows.length;
    const x = new Float32Array(N * C);
    rows.forEach((r, i) => x.set(r, i * C));
    const { bits, wide } = toBf16(weightOf(C, 4));
    const dy = uniform(N * C, 5);
    const X = ctx.upload(x, [N, C], 'f32', 'x');
    const W = ctx.upload(bits, [C], 'bf16', 'w');
    const { y, rstd } = rmsNormForward(ctx, X, W, EPS);
    const dx = rmsNormBackward(ctx, X, W, rstd, ctx.upload(dy, [N, C], 'f32', 'dy'));
    expect(compare(await ctx.read(y), rmsNormRef(x, wide, N, C, EPS).y, F32)).toBeNull();
    // dx scales like 1/|x|: 1e-15 for the huge row, so the absolute floor is scaled per row.
    const got = await ctx.read(dx);
    const want = rmsNormBackwardRef(x, wide, dy, N, C, EPS);
    rows.forEach((_, i) => {
      const s = Math.max(...Array.from(want.subarray(i * C, (i + 1) * C), Math.abs));
      const part = (a: ArrayLike<number>) => Array.from(a).slice(i * C, (i + 1) * C);
      expect(compare(part(got), part(want), { rel: F32.rel, abs: F32.abs * s })).toBeNull();
    });
  });

  it('names the tensor whose shape is wrong', async () => {
    const ctx = await testGpu();
    const X = ctx.zeros([2, 5], 'f32', 'hidden');
    const W = ctx.zeros([4], 'f32', 'input_layernorm.weight');
    expect(() => rmsNormForward(ctx, X, W, EPS)).toThrow(/input_layernorm\.weight.*\[5\].*\[4\]/);
  });
});

describe('layerNorm', () => {
  for (const [N, C] of SIZES) {
    it(`forward and backward, N=${N} C=${C}`, async () => {
      const ctx = await testGpu();
      const x = uniform(N * C, N * 10 + C, 2);
      const w = weightOf(C, C + 1);
      const b = uniform(C, C + 2);
      const dy = uniform(N * C, C + 3);
      const X = ctx.upload(x, [N, C], 'f32', 'x');
      const W = ctx.upload(w, [C], 'f32', 'w');
      const B = ctx.upload(b, [C], 'f32', 'b');
      const DY = ctx.upload(dy, [N, C], 'f32', 'dy');
      const { y, mean, rstd } = layerNormForward(ctx, X, W, B, EPS);
      const dx = layerNormBackward(ctx, X, W, mean, rstd, DY);
      const ref = layerNormRef(x, w, b, N, C, EPS);
      expect(compare(await ctx.read(y), ref.y, F32)).toBeNull();
      expect(compare(await ctx.read(mean), ref.mean, F32)).toBeNull();
      expect(compare(await ctx.read(rstd), ref.rstd, F32)).toBeNull();
      // NOTE: C=1 rows have zero variance: dx is exactly 0 in the reference, a few ulps of rounding on the GPU.
      expect(compare(await ctx.read(dx), layerNormBackwardRef(x, w, dy, N, C, EPS), F32)).toBeNull();
      for (const t of [X, W, B, DY, y, mean, rstd, dx]) t.dispose();
    });
  }

  it('reference gradient matches finite differences', () => {
    const [N, C] = [3, 7];
    const x = uniform(N * C, 11, 2);
    const w = weightOf(C, 12);
    const b = uniform(C, 13);
    const dy = uniform(N * C, 14);
    const f = (xs: Float64Array) => dot(dy, layerNormRef(xs, w, b, N, C, EPS).y);
    expect(checkGradient(f, x, layerNormBackwardRef(x, w, dy, N, C, EPS))).toBeNull();
  });

  it('stays accurate for rows with a large mean, constant rows, and f16 weight and bias', async () => {
    const ctx = await testGpu();
    const C = 257;
    const rows = [uniform(C, 1).map((v) => 1e4 + v), new Float32Array(C).fill(-7), uniform(C, 2, 1e6)];
    const N = rows.length;
    const x = new Float32Array(N * C);
    rows.forEach((r, i) => x.set(r, i * C));
    // f16 values exactly representable: multiples of 1/64 in [-2, 2].
    const w = Float32Array.from(uniform(C, 3, 2), (v) => Math.round(v * 64) / 64);
    const b = Float32Array.from(uniform(C, 4, 2), (v) => Math.round(v * 64) / 64);
    const dy = uniform(N * C, 5);
    const X = ctx.upload(x, [N, C], 'f32', 'x');
    const W = ctx.upload(toF16(w), [C], 'f16', 'w');
    const B = ctx.upload(toF16(b), [C], 'f16', 'b');
    const { y, mean, rstd } = layerNormForward(ctx, X, W, B, EPS);
    const dx = layerNormBackward(ctx, X, W, mean, rstd, ctx.upload(dy, [N, C], 'f32', 'dy'));
    const ref = layerNormRef(x, w, b, N, C, EPS);
    expect(compare(await ctx.read(y), ref.y, F32)).toBeNull();
    const wantDx = layerNormBackwardRef(x, w, dy, N, C, EPS);
    const gotDx = await ctx.read(dx);
    rows.forEach((_, i) => {
      const part = (a: ArrayLike<number>) => Array.from(a).slice(i * C, (i + 1) * C);
      // dx scales like 1/σ of its row (1e-6 for the 1e6 row): the absolute floor is scaled per row.
      const s = Math.max(1e-30, ...part(wantDx).map(Math.abs));
      expect(compare(part(gotDx), part(wantDx), { rel: F32.rel, abs: F32.abs * s })).toBeNull();
    });
  });
});

/** f16 bits of values exactly representable in f16. */
function toF16(a: Float32Array): Uint16Array {
  return Uint16Array.from(a, (v) => {
    if (v === 0) return 0;
    const s = v < 0 ? 0x8000 : 0;
    const e = Math.floor(Math.log2(Math.abs(v)));
    const m = Math.round((Math.abs(v) / 2 ** e - 1) * 1024);
    return s | ((e + 15) << 10) | m;
  });
}
