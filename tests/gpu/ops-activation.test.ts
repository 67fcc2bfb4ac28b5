// SwiGLU and GELU-tanh against the float64 reference: odd sizes, saturated and huge inputs, finite differences.
import { describe, expect, it } from 'vitest';
import { geluTanhBackward, geluTanhForward, swigluBackward, swigluForward } from '../../src/ops/activation';
import { checkGradient, dot } from '../helpers/finite-diff';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare, F32 } from '../helpers/tolerance';
import { geluTanhBackwardRef, geluTanhRef, swigluBackwardRef, swigluRef } from '../reference/ops';

const SHAPES: [number, number][] = [
  [1, 1],
  [1, 7],
  [3, 65],
  [33, 257],
];

// Saturation edges of exp in f32 (±88, ±89), of the clamps (±20, ±80), tiny, zero and huge inputs.
const EXTREME = Float32Array.from([
  0, -0, 1e-30, -1e-30, 0.5, -0.5, 5, -5, 10, -10, 20, -20, 30, -30, 80, -80, 88, -88, 89, -89, 1e4, -1e4,
  1e20, -1e20,
]);

describe('swiglu', () => {
  for (const [N, F] of SHAPES) {
    it(`forward and backward, N=${N} F=${F}`, async () => {
      const ctx = await testGpu();
      const n = N * F;
      const gate = uniform(n, n + 1, 6);
      const up = uniform(n, n + 2, 2);
      const dh = uniform(n, n + 3);
      const G = ctx.upload(gate, [N, F], 'f32', 'gate');
      const U = ctx.upload(up, [N, F], 'f32', 'up');
      const DH = ctx.upload(dh, [N, F], 'f32', 'dh');
      const h = swigluForward(ctx, G, U);
      const { dGate, dUp } = swigluBackward(ctx, G, U, DH);
      const want = swigluBackwardRef(gate, up, dh);
      expect(compare(await ctx.read(h), swigluRef(gate, up), F32)).toBeNull();
      expect(compare(await ctx.read(dGate), want.dGate, F32)).toBeNull();
      expect(compare(await ctx.read(dUp), want.dUp, F32)).toBeNull();
      for (const t of [G, U, DH, h, dGate, dUp]) t.dispose();
    });
  }

  it('is finite and exact for saturated and huge gates', async () => {
    const ctx = await testGpu();
    const n = EXTREME.length;
    const up = uniform(n, 1, 3);
    const dh = uniform(n, 2);
    const G = ctx.upload(EXTREME, [n], 'f32', 'gate');
    const U = ctx.upload(up, [n], 'f32', 'up');
    const h = await ctx.read(swigluForward(ctx, G, U));
    const { dGate, dUp } = swigluBackward(ctx, G, U, ctx.upload(dh, [n], 'f32', 'dh'));
    const want = swigluBackwardRef(EXTREME, up, dh);
    for (const got of [h, await ctx.read(dGate), await ctx.read(dUp)])
      expect(got.every(Number.isFinite)).toBe(true);
    expect(compare(h, swigluRef(EXTREME, up), F32)).toBeNull();
    expect(compare(await ctx.read(dGate), want.dGate, F32)).toBeNull();
    expect(compare(await ctx.read(dUp), want.dUp, F32)).toBeNull();
  });

  it('reference gradients match finite differences', () => {
    const gate = uniform(20, 1, 6);
    const up = uniform(20, 2, 2);
    const dh = uniform(20, 3);
    const { dGate, dUp } = swigluBackwardRef(gate, up, dh);
    expect(checkGradient((g) => dot(dh, swigluRef(g, up)), gate, dGate)).toBeNull();
    expect(checkGradient((u) => dot(dh, swigluRef(gate, u)), up, dUp)).toBeNull();
  });

  it('names the tensor whose shape is wrong', async () => {
    const ctx = await testGpu();
    const G = ctx.zeros([2, 6], 'f32', 'mlp.gate');
    const U = ctx.zeros([2, 5], 'f32', 'mlp.up');
    expect(() => swigluForward(ctx, G, U)).toThrow(/mlp\.up/);
  });
});

describe('geluTanh', () => {
  for (const [N, F] of SHAPES) {
    it(`forward and backward, N=${N} F=${F}`, async () => {
      const ctx = await testGpu();
      const n = N * F;
      const x = uniform(n, n + 5, 5);
      const dy = uniform(n, n + 6);
      const X = ctx.upload(x, [N, F], 'f32', 'x');
      const y = geluTanhForward(ctx, X);
      const dx = geluTanhBackward(ctx, X, ctx.upload(dy, [N, F], 'f32', 'dy'));
      expect(compare(await ctx.read(y), geluTanhRef(x), F32)).toBeNull();
      expect(compare(await ctx.read(dx), geluTanhBackwardRef(x, dy), F32)).toBeNull();
    });
  }

  it('is finite and exact for saturated and huge inputs', async () => {
    const ctx = await testGpu();
    const n = EXTREME.length;
    const dy = uniform(n, 7);
    const X = ctx.upload(EXTREME, [n], 'f32', 'x');
    const y = await ctx.read(geluTanhForward(ctx, X));
    const dx = await ctx.read(geluTanhBackward(ctx, X, ctx.upload(dy, [n], 'f32', 'dy')));
    expect(y.every(Number.isFinite) && dx.every(Number.isFinite)).toBe(true);
    expect(compare(y, geluTanhRef(EXTREME), F32)).toBeNull();
    expect(compare(dx, geluTanhBackwardRef(EXTREME, dy), F32)).toBeNull();
    // Saturated: exactly x for large positive x, and (to far below the tolerance) 0 for large negative x.
    expect(y[EXTREME.indexOf(1e4)]).toBe(1e4);
    expect(y[EXTREME.indexOf(Math.fround(1e20))]).toBe(Math.fround(1e20));
    expect(Math.abs(y[EXTREME.indexOf(-1e4)])).toBeLessThan(1e-20);
  });

  it('reference gradient matches finite differences', () => {
    const x = uniform(30, 8, 5);
    const dy = uniform(30, 9);
    expect(checkGradient((v) => dot(dy, geluTanhRef(v)), x, geluTanhBackwardRef(x, dy))).toBeNull();
  });
});
