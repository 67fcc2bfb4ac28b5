// The LoRA branch (shaders/lora.wgsl) against the float64 reference: shapes, accumulation, dropout, gradients.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import type { DropoutKey } from '../../src/ops/dropout';
import { dropoutHash, dropoutMask, moduleId } from '../../src/ops/dropout';
import { loraBackward, loraForward } from '../../src/ops/lora';
import { testGpu } from '../helpers/gpu';
import { uniform } from '../helpers/random';
import { compare } from '../helpers/tolerance';
import type { LoraDims } from '../reference/lora';
import { loraBackwardRef, loraForwardRef } from '../reference/lora';
import { centralDiff } from '../helpers/finite-diff';

// NOTE: every output is a sum of K f32 products of values in [-1, 1] (K = in, r, N or out); relative 1e-4 plus an
// absolute floor of 1e-6·K covers accumulation-order rounding near zero, while an indexing bug is O(1).
const tolFor = (K: number) => ({ rel: 1e-4, abs: 1e-6 * Math.max(1, K) });

/** Central differences of a float64 function, one coordinate at a time. */
interface Case extends LoraDims {
  seed: number;
}

function data(c: Case) {
  const { N, inF, outF, r, seed } = c;
  return {
    x: uniform(N * inF, seed),
    A: uniform(r * inF, seed + 1, 0.5),
    B: uniform(outF * r, seed + 2, 0.5),
    y0: uniform(N * outF, seed + 3),
    dy: uniform(N * outF, seed + 4),
    gA0: uniform(r * inF, seed + 5, 0.1),
    gB0: uniform(outF * r, seed + 6, 0.1),
    dx0: uniform(N * inF, seed + 7),
  };
}

async function runGpu(ctx: GpuContext, c: Case, scaling: number, gradScale: number, dropout?: DropoutKey) {
  const d = data(c);
  const { N, inF, outF, r } = c;
  const x = ctx.upload(d.x, [N, inF], 'f32', 'x');
  const A = ctx.upload(d.A, [r, inF], 'f32', 'lora_A');
  const B = ctx.upload(d.B, [outF, r], 'f32', 'lora_B');
  const y = ctx.upload(d.y0, [N, outF], 'f32', 'y');
  const dy = ctx.upload(d.dy, [N, outF], 'f32', 'dy');
  const gradA = ctx.upload(d.gA0, [r, inF], 'f32', 'gradA');
  const gradB = ctx.upload(d.gB0, [outF, r], 'f32', 'gradB');
  const dx = ctx.upload(d.dx0, [N, inF], 'f32', 'dx');
  const { xa } = loraForward(ctx, x, A, B, y, { scaling, dropout });
  loraBackward(ctx, x, A, B, xa, dy, gradA, gradB, dx, { scaling, gradScale, dropout });
  const out = {
    xa: await ctx.read(xa),
    y: await ctx.read(y),
    gradA: await ctx.read(gradA),
    gradB: await ctx.read(gradB),
    dx: await ctx.read(dx),
  };
  for (const t of [x, A, B, y, dy, gradA, gradB, dx, xa]) t.dispose();
  return { d, out };
}

const CASES: Case[] = [
  { N: 1, inF: 7, outF: 7, r: 1, seed: 10 },
  { N: 5, inF: 64, outF: 129, r: 4, seed: 20 },
  { N: 33, inF: 129, outF: 64, r: 8, seed: 30 },
  { N: 70, inF: 7, outF: 129, r: 3, seed: 40 },
  // r = 20: more than one rank tile (8) in lora_down / lora_grad and more than one rank chunk (16) in lora_up.
  { N: 17, inF: 33, outF: 65, r: 20, seed: 50 },
];

describe('lora forward and backward', () => {
  for (const c of CASES) {
    for (const p of [0, 0.25]) {
      it(`N=${c.N} in=${c.inF} out=${c.outF} r=${c.r} dropout ${p}`, async () => {
        const ctx = await testGpu();
        const dropout = { p, seed: 7, step: 3, module: moduleId('q_proj') };
        const [scaling, gradScale] = [2 / c.r, 0.25];
        const { d, out } = await runGpu(ctx, c, scaling, gradScale, dropout);
        const f = loraForwardRef(d.x, d.A, d.B, d.y0, c, scaling, dropout);
        expect(compare(out.xa, f.xa, tolFor(c.inF))).toBeNull();
        expect(compare(out.y, f.y, tolFor(c.inF))).toBeNull();
        const b = loraBackwardRef(
          d.x,
          d.A,
          d.B,
          d.dy,
          c,
          { scaling, gradScale, dropout },
          { gradA: d.gA0, gradB: d.gB0, dx: d.dx0 },
        );
        expect(compare(out.gradA, b.gradA, tolFor(c.N * c.outF))).toBeNull();
        expect(compare(out.gradB, b.gradB, tolFor(c.N * c.inF))).toBeNull();
        expect(compare(out.dx, b.dx, tolFor(c.outF))).toBeNull();
      });
    }
  }

  it('dropout p = 0 is bit-identical to no dropout', async () => {
    const ctx = await testGpu();
    const c = { N: 9, inF: 20, outF: 11, r: 4, seed: 60 };
    const zero = await runGpu(ctx, c, 0.5, 1, { p: 0, seed: 1, step: 1, module: 1 });
    const none = await runGpu(ctx, c, 0.5, 1);
    for (const k of ['xa', 'y', 'gradA', 'gradB', 'dx'] as const) {
      expect(Array.from(zero.out[k])).toEqual(Array.from(none.out[k]));
    }
  });

  it('accumulates gradients over micro-batches and into y and dx', async () => {
    const ctx = await testGpu();
    const c = { N: 6, inF: 10, outF: 12, r: 2, seed: 70 };
    const d = data(c);
    const x = ctx.upload(d.x, [6, 10], 'f32', 'x');
    const A = ctx.upload(d.A, [2, 10], 'f32', 'lora_A');
    const B = ctx.upload(d.B, [12, 2], 'f32', 'lora_B');
    const dy = ctx.upload(d.dy, [6, 12], 'f32', 'dy');
    const gradA = ctx.zeros([2, 10], 'f32', 'gradA');
    const gradB = ctx.zeros([12, 2], 'f32', 'gradB');
    const dx = ctx.zeros([6, 10], 'f32', 'dx');
    const y = ctx.zeros([6, 12], 'f32', 'y');
    for (let micro = 0; micro < 3; micro++) {
      const { xa } = loraForward(ctx, x, A, B, y, { scaling: 1 });
      loraBackward(ctx, x, A, B, xa, dy, gradA, gradB, dx, { scaling: 1, gradScale: 0.5 });
      xa.dispose();
    }
    const one = loraBackwardRef(d.x, d.A, d.B, d.dy, c, { scaling: 1, gradScale: 0.5 });
    const f = loraForwardRef(d.x, d.A, d.B, new Float64Array(72), c, 1);
    const times3 = (a: Float64Array) => a.map((v) => 3 * v);
    expect(compare(await ctx.read(gradA), times3(one.gradA), tolFor(18))).toBeNull();
    expect(compare(await ctx.read(gradB), times3(one.gradB), tolFor(18))).toBeNull();
    expect(compare(await ctx.read(dx), times3(one.dx), tolFor(6))).toBeNull();
    expect(compare(await ctx.read(y), times3(f.y), tolFor(30))).toBeNull();
  });

  it('regenerates the CPU twin mask in-kernel, with the kept fraction 1 − p', async () => {
    const ctx = await testGpu();
    // x = 1 and A = I make xa exactly mask / (1 − p): the kernel's mask, element by element.
    const [N, C] = [1024, 64];
    const x = ctx.upload(new Float32Array(N * C).fill(1), [N, C], 'f32', 'x');
    const eye = new Float32Array(C * C);
    for (let i = 0; i < C; i++) eye[i * C + i] = 1;
    const A = ctx.upload(eye, [C, C], 'f32', 'lora_A');
    const B = ctx.zeros([1, C], 'f32', 'lora_B');
    const y = ctx.zeros([N, 1], 'f32', 'y');
    for (const p of [0.1, 0.5]) {
      const key = { p, seed: 1234, step: 9, module: moduleId('model.layers.0.self_attn.v_proj') };
      const { xa } = loraForward(ctx, x, A, B, y, { scaling: 1, dropout: key });
      const got = await ctx.read(xa);
      const want = dropoutMask(key, N * C);
      const scale = Math.fround(1 / (1 - p));
      let kept = 0;
      let mismatches = 0;
      for (let i = 0; i < N * C; i++) {
        kept += want[i];
        if (got[i] !== (want[i] ? scale : 0)) mismatches++;
      }
      expect(mismatches).toBe(0);
      // 5 standard deviations of a binomial fraction over 65536 draws.
      const sigma = Math.sqrt((p * (1 - p)) / (N * C));
      expect(Math.abs(kept / (N * C) - (1 - p))).toBeLessThan(5 * sigma);
      xa.dispose();
    }
  });

  it('draws independent masks for other steps, modules and neighbouring elements', () => {
    const n = 1 << 16;
    const p = 0.5;
    const a = dropoutMask({ p, seed: 1, step: 1, module: 5 }, n);
    const others = [
      dropoutMask({ p, seed: 1, step: 2, module: 5 }, n),
      dropoutMask({ p, seed: 1, step: 1, module: 6 }, n),
      dropoutMask({ p, seed: 2, step: 1, module: 5 }, n),
    ];
    const sigma = Math.sqrt(0.25 / n);
    for (const b of others) {
      let same = 0;
      for (let i = 0; i < n; i++) same += a[i] === b[i] ? 1 : 0;
      expect(Math.abs(same / n - 0.5)).toBeLessThan(5 * sigma);
    }
    let neighbours = 0;
    for (let i = 1; i < n; i++) neighbours += a[i] === a[i - 1] ? 1 : 0;
    expect(Math.abs(neighbours / (n - 1) - 0.5)).toBeLessThan(5 * sigma);
    // Hash values are u32 and spread over the whole range (top bit set about half the time).
    let top = 0;
    for (let i = 0; i < n; i++) top += dropoutHash(3, 4, 5, i) >>> 31;
    expect(Math.abs(top / n - 0.5)).toBeLessThan(5 * sigma);
  });

  it('reference gradients match central finite differences (with dropout)', () => {
    const c = { N: 3, inF: 5, outF: 4, r: 2, seed: 80 };
    const d = data(c);
    const dropout = { p: 0.3, seed: 5, step: 2, module: 11 };
    const scaling = 1.5;
    const loss = (x: ArrayLike<number>, A: ArrayLike<number>, B: ArrayLike<number>) => {
      const { y } = loraForwardRef(x, A, B, new Float64Array(12), c, scaling, dropout);
      return y.reduce((s, v, i) => s + v * d.dy[i], 0);
    };
    const g = loraBackwardRef(d.x, d.A, d.B, d.dy, c, { scaling, gradScale: 1, dropout });
    const x = Float64Array.from(d.x);
    const A = Float64Array.from(d.A);
    const B = Float64Array.from(d.B);
    const fdTol = { rel: 1e-7, abs: 1e-9 };
    expect(
      compare(
        centralDiff((p) => loss(p, A, B), x),
        g.dx,
        fdTol,
      ),
    ).toBeNull();
    expect(
      compare(
        centralDiff((p) => loss(x, p, B), A),
        g.gradA,
        fdTol,
      ),
    ).toBeNull();
    expect(
      compare(
        centralDiff((p) => loss(x, A, p), B),
        g.gradB,
        fdTol,
      ),
    ).toBeNull();
    // Dropout must matter here, or this check would not cover the mask in dx and gradA.
    expect(dropoutMask(dropout, 15).includes(0)).toBe(true);
  });

  it('rejects mismatched shapes with the tensor names', async () => {
    const ctx = await testGpu();
    const x = ctx.zeros([4, 6], 'f32', 'x');
    const A = ctx.zeros([2, 5], 'f32', 'q_proj.lora_A');
    const B = ctx.zeros([3, 2], 'f32', 'q_proj.lora_B');
    const y = ctx.zeros([4, 3], 'f32', 'y');
    expect(() => loraForward(ctx, x, A, B, y, { scaling: 1 })).toThrow(/lora_A.*\[2,6\].*\[2,5\]/);
    const A2 = ctx.zeros([2, 6], 'f32', 'q_proj.lora_A');
    const y2 = ctx.zeros([4, 4], 'f32', 'o');
    expect(() => loraForward(ctx, x, A2, B, y2, { scaling: 1 })).toThrow(/lora y o/);
  });
});
