// The tiled matmul against the float64 reference: every transpose, accumulation, batching, odd and large shapes.
import { describe, expect, it } from 'vitest';
import { matmul, matmulInto } from '../../src/ops/matmul';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare } from '../helpers/tolerance';
import { matmulRef } from '../reference/matmul';

// NOTE: sums of K products of values in [-1, 1] in f32; relative 1e-4 of the result plus an absolute floor that
// grows like sqrt(K)·2^-24·K covers the rounding of the accumulation order without hiding indexing bugs (those are O(1)).
const tolFor = (K: number) => ({ rel: 1e-4, abs: 1e-6 * Math.max(1, K) });

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [1, 64, 1],
  [64, 64, 16],
  [65, 63, 17],
  [129, 257, 65],
  [3, 300, 200],
];

describe('matmul (f32)', () => {
  for (const [M, N, K] of SHAPES) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`${M}x${K} · ${K}x${N}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}`, async () => {
          const ctx = await testGpu();
          const a = uniform(M * K, M * 31 + K);
          const b = uniform(K * N, N * 17 + K + 1);
          const A = ctx.upload(a, transA ? [K, M] : [M, K], 'f32', 'A');
          const B = ctx.upload(b, transB ? [N, K] : [K, N], 'f32', 'B');
          const C = matmul(ctx, A, B, { transA, transB, alpha: 0.5 });
          const got = await ctx.read(C);
          expect(
            compare(got, matmulRef(a, b, M, N, K, { transA, transB, alpha: 0.5 }), tolFor(K)),
          ).toBeNull();
          for (const t of [A, B, C]) t.dispose();
        });
      }
    }
  }

  it('accumulates into the output', async () => {
    const ctx = await testGpu();
    const [M, N, K] = [33, 70, 19];
    const a = uniform(M * K, 1);
    const b = uniform(N * K, 2);
    const c0 = uniform(M * N, 3);
    const A = ctx.upload(a, [M, K], 'f32', 'A');
    const B = ctx.upload(b, [N, K], 'f32', 'B');
    const C = ctx.upload(c0, [M, N], 'f32', 'C');
    matmulInto(ctx, A, B, C, { transB: true, accumulate: true });
    matmulInto(ctx, A, B, C, { transB: true, accumulate: true, alpha: -2 });
    const want = matmulRef(a, b, M, N, K, { transB: true, alpha: -1, c0 });
    expect(compare(await ctx.read(C), want, tolFor(K))).toBeNull();
  });

  it('batches, broadcasting a shared B', async () => {
    const ctx = await testGpu();
    const [batch, M, N, K] = [3, 9, 11, 70];
    const a = uniform(batch * M * K, 4);
    const b = uniform(K * N, 5);
    const A = ctx.upload(a, [batch, M, K], 'f32', 'A');
    const B = ctx.upload(b, [K, N], 'f32', 'B');
    const got = await ctx.read(matmul(ctx, A, B));
    for (let i = 0; i < batch; i++) {
      const want = matmulRef(a.subarray(i * M * K, (i + 1) * M * K), b, M, N, K);
      expect(compare(got.subarray(i * M * N, (i + 1) * M * N), want, tolFor(K))).toBeNull();
    }
  });

  it('reads B as bf16 and f16, widened in the kernel', async () => {
    const ctx = await testGpu();
    const [M, N, K] = [5, 37, 23];
    const a = uniform(M * K, 6);
    const b = uniform(N * K, 7);
    // bf16 by truncation: the reference uses exactly the values the GPU sees.
    const bBits = new Uint16Array(new Uint32Array(b.buffer).map((w) => w >>> 16));
    const bWide = new Float32Array(new Uint32Array(bBits).map((h) => h << 16).buffer);
    const A = ctx.upload(a, [M, K], 'f32', 'A');
    const B = ctx.upload(bBits, [N, K], 'bf16', 'B');
    const got = await ctx.read(matmul(ctx, A, B, { transB: true }));
    expect(compare(got, matmulRef(a, bWide, M, N, K, { transB: true }), tolFor(K))).toBeNull();

    const half = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x0001]); // 1, -2, 0.5, smallest subnormal
    const H = ctx.upload(half, [1, 4], 'f16', 'H');
    const one = ctx.upload(new Float32Array([1]), [1, 1], 'f32', 'one');
    const hv = await ctx.read(matmul(ctx, one, H));
    expect(Array.from(hv)).toEqual([1, -2, 0.5, 2 ** -24]);
  });

  it('rejects mismatched shapes with the tensor names', async () => {
    const ctx = await testGpu();
    const A = ctx.zeros([4, 5], 'f32', 'lhs');
    const B = ctx.zeros([6, 3], 'f32', 'rhs');
    expect(() => matmul(ctx, A, B)).toThrow(/lhs\[4,5\].*rhs\[6,3\]/);
  });
});
