// Elementwise ops and the strided copy against plain CPU arithmetic, with 16-bit operands and grids past 65535.
import { describe, expect, it } from 'vitest';
import { add, addBias, addInto, copy2d, scale, spreadGroups } from '../../src/ops/elementwise';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare } from '../helpers/tolerance';

/** bf16 by truncation, and the values it stands for. */
function bf16(a: Float32Array): { bits: Uint16Array; wide: Float32Array } {
  const bits = new Uint16Array(new Uint32Array(a.buffer.slice(0)).map((w) => w >>> 16));
  return { bits, wide: new Float32Array(new Uint32Array(bits).map((h) => h << 16).buffer) };
}

// Sums and products of two f32 values are correctly rounded, so these results must be exact.
const EXACT = { rel: 0, abs: 0 };

describe('elementwise', () => {
  for (const n of [1, 7, 257, 1000]) {
    it(`add, addInto and scale, n=${n}`, async () => {
      const ctx = await testGpu();
      const a = uniform(n, n, 100);
      const b = uniform(n, n + 1);
      const A = ctx.upload(a, [n], 'f32', 'a');
      const B = ctx.upload(b, [n], 'f32', 'b');
      const S = add(ctx, A, B);
      addInto(ctx, A, B);
      scale(ctx, B, -0.75);
      const sum = Float32Array.from(a, (v, i) => v + b[i]);
      expect(compare(await ctx.read(S), sum, EXACT)).toBeNull();
      expect(compare(await ctx.read(A), sum, EXACT)).toBeNull();
      expect(
        compare(
          await ctx.read(B),
          Float32Array.from(b, (v) => Math.fround(v * -0.75)),
          EXACT,
        ),
      ).toBeNull();
    });
  }

  it('adds bf16 and f16 operands, widened in the kernel', async () => {
    const ctx = await testGpu();
    const a = uniform(9, 1);
    const { bits, wide } = bf16(uniform(9, 2));
    const A = ctx.upload(a, [9], 'f32', 'a');
    const got = await ctx.read(add(ctx, A, ctx.upload(bits, [9], 'bf16', 'b')));
    expect(
      compare(
        got,
        Float32Array.from(a, (v, i) => v + wide[i]),
        EXACT,
      ),
    ).toBeNull();
    // 1, -2, 0.5 in f16
    const H = ctx.upload(new Uint16Array([0x3c00, 0xc000, 0x3800]), [3], 'f16', 'h');
    const T = ctx.zeros([3], 'f32', 't');
    addInto(ctx, T, H);
    expect(Array.from(await ctx.read(T))).toEqual([1, -2, 0.5]);
  });

  for (const [N, C] of [
    [1, 1],
    [3, 7],
    [33, 65],
  ]) {
    it(`addBias f32 and bf16, N=${N} C=${C}`, async () => {
      const ctx = await testGpu();
      const x = uniform(N * C, C, 3);
      const b = uniform(C, C + 1);
      const { bits, wide } = bf16(b);
      const X = ctx.upload(x, [N, C], 'f32', 'x');
      addBias(ctx, X, ctx.upload(b, [C], 'f32', 'bias'));
      addBias(ctx, X, ctx.upload(bits, [C], 'bf16', 'bias16'));
      const want = Float32Array.from(x, (v, i) => Math.fround(Math.fround(v + b[i % C]) + wide[i % C]));
      expect(compare(await ctx.read(X), want, EXACT)).toBeNull();
    });
  }

  it('copies a block of columns between strided tensors', async () => {
    const ctx = await testGpu();
    const src = uniform(5 * 9, 4);
    const S = ctx.upload(src, [5, 9], 'f32', 'src');
    const D = ctx.zeros([4, 11], 'f32', 'dst');
    // rows 1..3, columns 2..8 of src into columns 4..10 of dst rows 0..2.
    copy2d(ctx, S, D, { rows: 3, cols: 7, srcOffset: 9 + 2, srcLd: 9, dstOffset: 4, dstLd: 11 });
    const want = new Float32Array(44);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 7; c++) want[r * 11 + 4 + c] = src[(r + 1) * 9 + 2 + c];
    expect(compare(await ctx.read(D), want, EXACT)).toBeNull();
    expect(() => copy2d(ctx, S, D, { rows: 4, cols: 7, dstOffset: 5, dstLd: 11 })).toThrow(/dst\[4,11\]/);
  });

  it('spreads grids over two dimensions past 65535 workgroups', async () => {
    const ctx = await testGpu();
    expect(spreadGroups(ctx, 65535)).toEqual([65535, 1]);
    const [gx, gy] = spreadGroups(ctx, 65536 * 3 + 1);
    expect(gy).toBe(4);
    expect(gx * gy).toBeGreaterThanOrEqual(65536 * 3 + 1);
    // 65537 workgroups of 256: the last element lives in workgroup (x=0, y=1).
    const n = 65536 * 256 + 3;
    const X = ctx.upload(new Float32Array(n).fill(2), [n], 'f32', 'big');
    scale(ctx, X, 1.5);
    const got = await ctx.read(X);
    expect(got[0]).toBe(3);
    expect(got[n - 1]).toBe(3);
    expect(got.every((v) => v === 3)).toBe(true);
    X.dispose();
  });

  it('rejects shape mismatches with the tensor names', async () => {
    const ctx = await testGpu();
    const X = ctx.zeros([2, 3], 'f32', 'hidden');
    expect(() => addBias(ctx, X, ctx.zeros([2], 'f32', 'o_proj.bias'))).toThrow(/o_proj\.bias.*\[3\]/);
    expect(() => addInto(ctx, X, ctx.zeros([3, 2], 'f32', 'residual'))).toThrow(/residual/);
  });
});
