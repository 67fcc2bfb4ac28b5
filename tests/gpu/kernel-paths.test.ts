// The wide-shape paths of the LoRA and attention kernels that the small per-op tests do not reach: several lanes
// per row in lora_down (in ≥ 256), many split-K chunks in lora_grad (N > 2000), the tiled attention kernels (D > 32)
// and the per-row ones at their limit (D = 32), with packing segments — all against the float64 references.
import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward } from '../../src/ops/attention';
import { loraBackward, loraForward } from '../../src/ops/lora';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare } from '../helpers/tolerance';
import { attentionBackwardRef, attentionRef } from '../reference/attention';
import { loraBackwardRef, loraForwardRef } from '../reference/lora';

// NOTE: sums of K products of O(1) values in f32: relative 1e-4 plus an absolute floor growing with K (as in
// lora.test.ts); an indexing or masking error is O(1).
const tolFor = (K: number) => ({ rel: 1e-4, abs: 1e-6 * Math.max(1, K) });

describe('LoRA kernels on wide shapes', () => {
  for (const c of [
    { N: 37, inF: 700, outF: 300, r: 20, p: 0.3 },
    { N: 2100, inF: 64, outF: 520, r: 8, p: 0.1 },
    { N: 150, inF: 4100, outF: 9, r: 3, p: 0 },
  ]) {
    it(`N ${c.N}, in ${c.inF}, out ${c.outF}, r ${c.r}, dropout ${c.p}`, async () => {
      const ctx = await testGpu();
      const { N, inF, outF, r } = c;
      const d = {
        x: uniform(N * inF, 1),
        A: uniform(r * inF, 2, 0.5),
        B: uniform(outF * r, 3, 0.5),
        y0: uniform(N * outF, 4),
        dy: uniform(N * outF, 5),
      };
      const drop = c.p ? { p: c.p, seed: 3, step: 2, module: 7 } : undefined;
      const x = ctx.upload(d.x, [N, inF], 'f32', 'x');
      const A = ctx.upload(d.A, [r, inF], 'f32', 'A');
      const B = ctx.upload(d.B, [outF, r], 'f32', 'B');
      const y = ctx.upload(d.y0, [N, outF], 'f32', 'y');
      const dy = ctx.upload(d.dy, [N, outF], 'f32', 'dy');
      const gA = ctx.zeros([r, inF], 'f32', 'gA');
      const gB = ctx.zeros([outF, r], 'f32', 'gB');
      const dx = ctx.zeros([N, inF], 'f32', 'dx');
      const { xa } = loraForward(ctx, x, A, B, y, { scaling: 2, dropout: drop });
      loraBackward(ctx, x, A, B, xa, dy, gA, gB, dx, { scaling: 2, gradScale: 0.5, dropout: drop });
      const dims = { N, inF, outF, r };
      const f = loraForwardRef(d.x, d.A, d.B, d.y0, dims, 2, drop);
      const b = loraBackwardRef(d.x, d.A, d.B, d.dy, dims, { scaling: 2, gradScale: 0.5, dropout: drop });
      expect(compare(await ctx.read(xa), f.xa, tolFor(inF)), 'xa').toBeNull();
      expect(compare(await ctx.read(y), f.y, tolFor(inF)), 'y').toBeNull();
      expect(compare(await ctx.read(gA), b.gradA, tolFor(N * outF)), 'gradA').toBeNull();
      expect(compare(await ctx.read(gB), b.gradB, tolFor(N * inF)), 'gradB').toBeNull();
      expect(compare(await ctx.read(dx), b.dx, tolFor(outF)), 'dx').toBeNull();
      for (const t of [x, A, B, y, dy, gA, gB, dx, xa]) t.dispose();
    });
  }
});

describe('attention kernels on larger heads', () => {
  for (const [B, T, H, Hkv, D, useSeg] of [
    [2, 70, 4, 2, 32, true],
    [1, 40, 2, 1, 64, true],
    [1, 130, 2, 2, 8, false],
  ] as const) {
    it(`B ${B}, T ${T}, H ${H}/${Hkv}, D ${D}${useSeg ? ', segments' : ''}`, async () => {
      const ctx = await testGpu();
      const cfg = { B, T, H, Hkv, D, scale: 1 / Math.sqrt(D) };
      const N = B * T;
      const d = {
        q: uniform(N * H * D, 1),
        k: uniform(N * Hkv * D, 2),
        v: uniform(N * Hkv * D, 3),
        dOut: uniform(N * H * D, 4),
      };
      const seg = useSeg ? Int32Array.from({ length: N }, (_, i) => Math.floor((i % T) / 17)) : undefined;
      const q = ctx.upload(d.q, [N, H * D], 'f32', 'q');
      const k = ctx.upload(d.k, [N, Hkv * D], 'f32', 'k');
      const v = ctx.upload(d.v, [N, Hkv * D], 'f32', 'v');
      const dO = ctx.upload(d.dOut, [N, H * D], 'f32', 'dO');
      const s = seg ? ctx.upload(seg, [N], 'i32', 'seg') : undefined;
      const { out, lse } = attentionForward(ctx, q, k, v, cfg, s);
      const g = attentionBackward(ctx, q, k, v, out, lse, dO, cfg, s);
      const f = attentionRef(d.q, d.k, d.v, cfg, seg);
      const bw = attentionBackwardRef(d.q, d.k, d.v, d.dOut, cfg, seg);
      // Same tolerances as attention.test.ts (reasons written there).
      expect(compare(await ctx.read(out), f.out, { rel: 1e-4, abs: 2e-6 }), 'out').toBeNull();
      expect(compare(await ctx.read(lse), f.lse, { rel: 1e-4, abs: 2e-6 }), 'lse').toBeNull();
      expect(compare(await ctx.read(g.dq), bw.dq, { rel: 1e-4, abs: 1e-5 }), 'dq').toBeNull();
      expect(compare(await ctx.read(g.dk), bw.dk, { rel: 1e-4, abs: 1e-5 }), 'dk').toBeNull();
      expect(compare(await ctx.read(g.dv), bw.dv, { rel: 1e-4, abs: 1e-5 }), 'dv').toBeNull();
    });
  }
});
