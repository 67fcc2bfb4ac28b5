// The in-page self-test: a few odd-shaped matmuls on the GPU against a float64 CPU product, and a timed one.
import type { GpuContext } from '../gpu/context';
import { matmul } from '../ops/matmul';
import type { MemorySample, SelfTestCase, SelfTestResult } from './protocol';

/** Odd sizes catch tile-edge bugs; kept small because SwiftShader runs them on the CPU. */
export const SELF_TEST_SHAPES: readonly (readonly [number, number, number, boolean])[] = [
  // [M, N, K, transB]
  [7, 13, 5, false],
  [33, 65, 17, false],
  [33, 65, 17, true],
  [1, 64, 1, false],
];

/** Square size of the timed matmul (2·S³ flops per product). */
export const TIMED_SIZE = 128;
const TIMED_REPS = 4;

/** Same rule as the GPU test suite: relative 1e-4 of the result plus a floor growing with K. */
function bound(want: number, K: number): number {
  return 1e-4 * Math.abs(want) + 1e-6 * Math.max(1, K);
}

/** Deterministic values in [-1, 1) (mulberry32), so a failure reproduces. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** C = A · op(B) in float64; A is [M, K], B is [K, N] or, with transB, [N, K]. */
export function matmulCpu(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  M: number,
  N: number,
  K: number,
  transB: boolean,
): Float64Array {
  const c = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[m * K + k] * (transB ? b[n * K + k] : b[k * N + n]);
      c[m * N + n] = s;
    }
  }
  return c;
}

export async function runMatmulSelfTest(
  ctx: GpuContext,
  now: () => number = () => performance.now(),
): Promise<SelfTestResult> {
  const t0 = now();
  const memory: MemorySample[] = [];
  const sample = () => {
    const s = ctx.pool.snapshot();
    memory.push({ t: now() - t0, liveBytes: s.liveBytes, peakBytes: s.peakBytes });
  };
  sample();

  const cases: SelfTestCase[] = [];
  for (const [M, N, K, transB] of SELF_TEST_SHAPES) {
    const a = values(M * K, M * 31 + K);
    const b = values(K * N, N * 17 + K + 1);
    const A = ctx.upload(a, [M, K], 'f32', 'selftest A');
    const B = ctx.upload(b, transB ? [N, K] : [K, N], 'f32', 'selftest B');
    const C = matmul(ctx, A, B, { transB }, 'selftest C');
    sample();
    const got = await ctx.read(C);
    const want = matmulCpu(a, b, M, N, K, transB);
    let maxAbsError = 0;
    let passed = true;
    let tolerance = 0;
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i] - want[i]);
      const tol = bound(want[i], K);
      tolerance = Math.max(tolerance, tol);
      // `!(err <= tol)` so that NaN fails.
      if (!(err <= tol)) passed = false;
      if (!(err <= maxAbsError)) maxAbsError = err;
    }
    cases.push({ M, N, K, transB, maxAbsError, tolerance, passed });
    for (const t of [A, B, C]) t.dispose();
    sample();
  }

  // Timed square product: one warm-up (pipeline compile), then TIMED_REPS products in one submit.
  const S = TIMED_SIZE;
  const A = ctx.upload(values(S * S, 1), [S, S], 'f32', 'selftest timed A');
  const B = ctx.upload(values(S * S, 2), [S, S], 'f32', 'selftest timed B');
  matmul(ctx, A, B, {}, 'selftest warmup').dispose();
  await ctx.sync();
  const start = now();
  const outs = [];
  for (let i = 0; i < TIMED_REPS; i++) outs.push(matmul(ctx, A, B, {}, 'selftest timed C'));
  sample();
  await ctx.sync();
  const seconds = Math.max((now() - start) / 1000, 1e-6);
  const gflops = (2 * S * S * S * TIMED_REPS) / seconds / 1e9;
  for (const t of [A, B, ...outs]) t.dispose();
  sample();

  return {
    passed: cases.every((c) => c.passed),
    cases,
    maxAbsError: cases.reduce((m, c) => Math.max(m, c.maxAbsError), 0),
    gflops,
    timedShape: [S, S, S],
    memory,
    pool: ctx.pool.snapshot(),
    ms: now() - t0,
  };
}
