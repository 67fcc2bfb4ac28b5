// RoPE against the float64 reference: odd head counts and rows, long positions, llama3 scaling, and the backward.
import { describe, expect, it } from 'vitest';
import type { RopeConfig } from '../../src/ops/rope';
import { ropeBackward, ropeForward, ropeInvFreq } from '../../src/ops/rope';
import { checkGradient, dot } from '../helpers/finite-diff';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare, F32 } from '../helpers/tolerance';
import { ropeInvFreqRef, ropeRef } from '../reference/ops';

// Llama 3.2's published rope_scaling.
type Rope = RopeConfig & { headDim: number };

const LLAMA3: Rope = {
  theta: 500000,
  headDim: 64,
  scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
};

const CASES: { N: number; H: number; rope: Rope; maxPos: number }[] = [
  { N: 1, H: 1, rope: { theta: 10000, headDim: 2 }, maxPos: 1 },
  { N: 3, H: 7, rope: { theta: 10000, headDim: 8 }, maxPos: 20 },
  { N: 33, H: 3, rope: { theta: 1000000, headDim: 64 }, maxPos: 40000 },
  { N: 33, H: 2, rope: LLAMA3, maxPos: 131072 },
];

/** Positions that restart per packed example: runs of increasing positions from random starts. */
function positionsOf(N: number, maxPos: number, seed: number): Int32Array {
  const r = uniform(N, seed);
  const out = new Int32Array(N);
  for (let n = 0; n < N; n++) out[n] = n % 5 === 0 ? Math.floor(Math.abs(r[n]) * maxPos) : out[n - 1] + 1;
  return out;
}

describe('rope', () => {
  for (const { N, H, rope, maxPos } of CASES) {
    it(`forward and backward, N=${N} H=${H} D=${rope.headDim} theta=${rope.theta}${rope.scaling ? ' llama3' : ''}`, async () => {
      const ctx = await testGpu();
      const D = rope.headDim;
      const x = uniform(N * H * D, N + H + D, 2);
      const pos = positionsOf(N, maxPos, N * H);
      const X = ctx.upload(x, [N, H * D], 'f32', 'q');
      const POS = ctx.upload(pos, [N], 'i32', 'positions');
      const y = ropeForward(ctx, X, POS, H, rope);
      const dx = ropeBackward(ctx, X, POS, H, rope);
      // The angle is rounded to f32 in both (as HF does); what remains is the kernel's reduction and polynomials.
      expect(compare(await ctx.read(y), ropeRef(x, pos, N, H, rope), F32)).toBeNull();
      expect(compare(await ctx.read(dx), ropeRef(x, pos, N, H, rope, -1), F32)).toBeNull();
      for (const t of [X, POS, y, dx]) t.dispose();
    });
  }

  it('infers the head dim from x when the config leaves it out (ModelSpec.rope)', async () => {
    const ctx = await testGpu();
    const [N, H, D] = [3, 2, 8];
    const x = uniform(N * H * D, 9);
    const pos = [4, 5, 1000];
    const X = ctx.upload(x, [N, H * D], 'f32', 'q');
    const y = ropeForward(ctx, X, ctx.upload(Int32Array.from(pos), [N], 'i32', 'positions'), H, {
      theta: 1e4,
    });
    expect(compare(await ctx.read(y), ropeRef(x, pos, N, H, { theta: 1e4, headDim: D }), F32)).toBeNull();
  });

  it('backward undoes forward', async () => {
    const ctx = await testGpu();
    const [N, H, D] = [5, 3, 16];
    const x = uniform(N * H * D, 3);
    const POS = ctx.upload(Int32Array.from([0, 1, 2, 70000, 123]), [N], 'i32', 'positions');
    const rope = { theta: 10000, headDim: D };
    const back = ropeBackward(
      ctx,
      ropeForward(ctx, ctx.upload(x, [N, H * D], 'f32', 'k'), POS, H, rope),
      POS,
      H,
      rope,
    );
    expect(compare(await ctx.read(back), x, F32)).toBeNull();
  });

  it('computes inv_freq as transformers does, llama3 smoothing included', () => {
    expect(compare(ropeInvFreq(LLAMA3), ropeInvFreqRef(LLAMA3), { rel: 1e-15, abs: 0 })).toBeNull();
    const inv = ropeInvFreq(LLAMA3);
    // Published endpoints: the highest frequency (wavelen 2π < 8192/4) is kept; the lowest is divided by 32.
    expect(inv[0]).toBe(1);
    expect(inv[31]).toBeCloseTo(1 / 500000 ** (62 / 64) / 32, 20);
    // Some frequencies fall in the smoothed band, strictly between f/32 and f.
    const plain = ropeInvFreq({ theta: 500000, headDim: 64 });
    expect(inv.some((f, i) => f < plain[i] && f > plain[i] / 32)).toBe(true);
  });

  it('reference gradient matches finite differences', () => {
    const [N, H] = [3, 2];
    const rope = { theta: 10000, headDim: 8 };
    const x = uniform(N * H * 8, 4);
    const dy = uniform(N * H * 8, 5);
    const pos = [0, 7, 300];
    const f = (v: Float64Array) => dot(dy, ropeRef(v, pos, N, H, rope));
    expect(checkGradient(f, x, ropeRef(dy, pos, N, H, rope, -1))).toBeNull();
  });

  it('names the tensor whose shape is wrong', async () => {
    const ctx = await testGpu();
    const X = ctx.zeros([4, 24], 'f32', 'q_proj.out');
    const POS = ctx.zeros([4], 'i32', 'positions');
    expect(() => ropeForward(ctx, X, POS, 2, { theta: 1e4, headDim: 8 })).toThrow(
      /q_proj\.out.*2 heads of 8/,
    );
  });
});
