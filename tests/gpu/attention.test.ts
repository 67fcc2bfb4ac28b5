// Tiled causal attention (shaders/attention*.wgsl) against the float64 reference: GQA, tiles, packing, extreme logits.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import type { AttentionConfig } from '../../src/ops/attention';
import { attentionBackward, attentionForward } from '../../src/ops/attention';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare } from '../helpers/tolerance';
import { attentionBackwardRef, attentionRef } from '../reference/attention';
import { centralDiff } from '../helpers/finite-diff';

// NOTE: outputs are convex combinations or sums of ≤ T·D products of O(1) values, and exp() on the GPU is accurate
// to a few ulp; relative 1e-4 with an absolute floor of 2e-6 (1e-5 for gradients, which sum up to T·H/Hkv
// such terms) covers f32 rounding, while a masking or indexing error is O(0.1).
const OUT_TOL = { rel: 1e-4, abs: 2e-6 };
const GRAD_TOL = { rel: 1e-4, abs: 1e-5 };

const cfgOf = (B: number, T: number, H: number, Hkv: number, D: number): AttentionConfig => ({
  B,
  T,
  H,
  Hkv,
  D,
  scale: 1 / Math.sqrt(D),
});

function inputs(cfg: AttentionConfig, seed: number, scale = 1) {
  const N = cfg.B * cfg.T;
  return {
    q: uniform(N * cfg.H * cfg.D, seed, scale),
    k: uniform(N * cfg.Hkv * cfg.D, seed + 1, scale),
    v: uniform(N * cfg.Hkv * cfg.D, seed + 2),
    dOut: uniform(N * cfg.H * cfg.D, seed + 3),
  };
}

async function runGpu(ctx: GpuContext, cfg: AttentionConfig, d: ReturnType<typeof inputs>, seg?: Int32Array) {
  const N = cfg.B * cfg.T;
  const q = ctx.upload(d.q, [N, cfg.H * cfg.D], 'f32', 'q');
  const k = ctx.upload(d.k, [N, cfg.Hkv * cfg.D], 'f32', 'k');
  const v = ctx.upload(d.v, [N, cfg.Hkv * cfg.D], 'f32', 'v');
  const dOut = ctx.upload(d.dOut, [N, cfg.H * cfg.D], 'f32', 'dOut');
  const s = seg ? ctx.upload(seg, [N], 'i32', 'segment_ids') : undefined;
  const { out, lse } = attentionForward(ctx, q, k, v, cfg, s);
  const { dq, dk, dv } = attentionBackward(ctx, q, k, v, out, lse, dOut, cfg, s);
  const res = {
    out: await ctx.read(out),
    lse: await ctx.read(lse),
    dq: await ctx.read(dq),
    dk: await ctx.read(dk),
    dv: await ctx.read(dv),
  };
  for (const t of [q, k, v, dOut, out, lse, dq, dk, dv, s]) t?.dispose();
  return res;
}

function expectMatchesRef(
  got: Awaited<ReturnType<typeof runGpu>>,
  cfg: AttentionConfig,
  d: ReturnType<typeof inputs>,
  seg?: Int32Array,
) {
  const f = attentionRef(d.q, d.k, d.v, cfg, seg);
  const b = attentionBackwardRef(d.q, d.k, d.v, d.dOut, cfg, seg);
  expect(compare(got.out, f.out, OUT_TOL), 'out').toBeNull();
  expect(compare(got.lse, f.lse, OUT_TOL), 'lse').toBeNull();
  expect(compare(got.dq, b.dq, GRAD_TOL), 'dq').toBeNull();
  expect(compare(got.dk, b.dk, GRAD_TOL), 'dk').toBeNull();
  expect(compare(got.dv, b.dv, GRAD_TOL), 'dv').toBeNull();
}

const CASES: [number, number, number, number, number][] = [
  // B, T, H, Hkv, D
  [1, 1, 4, 2, 8],
  [2, 5, 4, 2, 2],
  [1, 33, 2, 2, 16],
  [2, 70, 4, 2, 8],
  [1, 20, 4, 1, 16],
];

describe('attention', () => {
  for (const [B, T, H, Hkv, D] of CASES) {
    it(`B=${B} T=${T} H=${H} Hkv=${Hkv} D=${D}: forward and backward`, async () => {
      const ctx = await testGpu();
      const cfg = cfgOf(B, T, H, Hkv, D);
      const d = inputs(cfg, B * 100 + T);
      expectMatchesRef(await runGpu(ctx, cfg, d), cfg, d);
    });
  }

  it('packed segments attend only within their segment', async () => {
    const ctx = await testGpu();
    const cfg = cfgOf(2, 19, 4, 2, 8);
    const seg = new Int32Array(38);
    // Row 0: segments of 5, 10 and 4 tokens (the second crosses a 16-token tile); row 1: one segment.
    for (let t = 0; t < 19; t++) seg[t] = t < 5 ? 0 : t < 15 ? 1 : 2;
    const d = inputs(cfg, 7);
    const got = await runGpu(ctx, cfg, d, seg);
    expectMatchesRef(got, cfg, d, seg);
    // Row 1 has a single segment: it equals unsegmented attention there.
    const plain = attentionRef(d.q, d.k, d.v, cfg);
    const half = 19 * 4 * 8;
    expect(compare(got.out.subarray(half), plain.out.subarray(half), OUT_TOL)).toBeNull();
  });

  it('two packed examples give what each gives alone', async () => {
    const ctx = await testGpu();
    const [H, Hkv, D] = [4, 2, 8];
    const lens = [7, 11];
    const packed = cfgOf(1, 18, H, Hkv, D);
    const d = inputs(packed, 42);
    const seg = Int32Array.from({ length: 18 }, (_, t) => (t < 7 ? 3 : 9));
    const together = await runGpu(ctx, packed, d, seg);
    let t0 = 0;
    for (const len of lens) {
      const cfg = cfgOf(1, len, H, Hkv, D);
      const slice = (a: Float32Array, w: number) => a.slice(t0 * w, (t0 + len) * w);
      const part = {
        q: slice(d.q, H * D),
        k: slice(d.k, Hkv * D),
        v: slice(d.v, Hkv * D),
        dOut: slice(d.dOut, H * D),
      };
      const alone = await runGpu(ctx, cfg, part);
      const tol = { rel: 1e-5, abs: 1e-6 };
      expect(compare(slice(together.out, H * D), alone.out, tol)).toBeNull();
      expect(compare(slice(together.dq, H * D), alone.dq, tol)).toBeNull();
      expect(compare(slice(together.dk, Hkv * D), alone.dk, tol)).toBeNull();
      expect(compare(slice(together.dv, Hkv * D), alone.dv, tol)).toBeNull();
      for (let h = 0; h < H; h++) {
        const lse = together.lse.slice(h * 18 + t0, h * 18 + t0 + len);
        expect(compare(lse, alone.lse.subarray(h * len, (h + 1) * len), tol)).toBeNull();
      }
      t0 += len;
    }
  });

  it('stays finite and accurate with large logits', async () => {
    const ctx = await testGpu();
    const cfg = cfgOf(1, 21, 2, 1, 8);
    // Scores up to ~|30·30·8|/sqrt(8) ≈ 2500: a naive exp() overflows at 88.
    const d = inputs(cfg, 5, 30);
    const got = await runGpu(ctx, cfg, d);
    for (const [name, a] of Object.entries(got)) {
      expect(a.every(Number.isFinite), `${name} finite`).toBe(true);
    }
    const f = attentionRef(d.q, d.k, d.v, cfg);
    // NOTE: an f32 score near 2500 carries an absolute rounding error ~1e-4, which moves probabilities by that
    // relative amount; hence 1e-3 here instead of 1e-4.
    expect(compare(got.lse, f.lse, { rel: 1e-4, abs: 1e-4 })).toBeNull();
    expect(compare(got.out, f.out, { rel: 1e-3, abs: 1e-3 })).toBeNull();
  });

  it('reference gradients match central finite differences (GQA, segments)', () => {
    const cfg = cfgOf(1, 5, 4, 2, 3);
    const d = inputs(cfg, 11);
    const seg = Int32Array.from([0, 0, 1, 1, 1]);
    const q = Float64Array.from(d.q);
    const k = Float64Array.from(d.k);
    const v = Float64Array.from(d.v);
    const loss = (qq: ArrayLike<number>, kk: ArrayLike<number>, vv: ArrayLike<number>) =>
      attentionRef(qq, kk, vv, cfg, seg).out.reduce((s, x, i) => s + x * d.dOut[i], 0);
    const g = attentionBackwardRef(q, k, v, d.dOut, cfg, seg);
    const tol = { rel: 1e-6, abs: 1e-9 };
    expect(
      compare(
        centralDiff((p) => loss(p, k, v), q),
        g.dq,
        tol,
      ),
    ).toBeNull();
    expect(
      compare(
        centralDiff((p) => loss(q, p, v), k),
        g.dk,
        tol,
      ),
    ).toBeNull();
    expect(
      compare(
        centralDiff((p) => loss(q, k, p), v),
        g.dv,
        tol,
      ),
    ).toBeNull();
  });

  it('rejects mismatched shapes with the tensor names', async () => {
    const ctx = await testGpu();
    const cfg = cfgOf(1, 4, 4, 2, 8);
    const q = ctx.zeros([4, 32], 'f32', 'layers.0.q');
    const k = ctx.zeros([4, 32], 'f32', 'layers.0.k');
    const v = ctx.zeros([4, 16], 'f32', 'layers.0.v');
    expect(() => attentionForward(ctx, q, k, v, cfg)).toThrow(/attention k layers\.0\.k.*\[4,16\].*\[4,32\]/);
    expect(() => attentionForward(ctx, q, v, v, { ...cfg, Hkv: 3 })).toThrow(/multiple/);
  });
});
