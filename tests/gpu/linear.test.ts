// Frozen linear layers (nn.Linear and Conv1D; f32, bf16, f16 weights; bias) against the float64 reference.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { bf16ToF32, f16ToF32 } from '../../src/gpu/context';
import type { DType } from '../../src/gpu/dtype';
import type { Weight } from '../../src/gpu/weight';
import { linearBackward, linearForward } from '../../src/ops/linear';
import { testGpu } from '../helpers/gpu';
import { rng, uniform } from '../helpers/random';
import { compare } from '../helpers/tolerance';
import { linearBackwardRef, linearForwardRef } from '../reference/lora';

// NOTE: sums of K f32 products of values in [-1, 1]; relative 1e-4 plus 1e-6·K absolute near zero (see matmul).
const tolFor = (K: number) => ({ rel: 1e-4, abs: 1e-6 * Math.max(1, K) });

/** Random weight values exactly representable in `dtype`, as storage words and as the f32 values they mean. */
function weightData(
  n: number,
  dtype: DType,
  seed: number,
): { raw: Float32Array | Uint16Array; values: Float32Array } {
  if (dtype === 'f32') {
    const v = uniform(n, seed);
    return { raw: v, values: v };
  }
  if (dtype === 'bf16') {
    const bits = new Uint16Array(new Uint32Array(uniform(n, seed).buffer).map((w) => w >>> 16));
    return { raw: bits, values: bf16ToF32(bits) };
  }
  // f16: random sign, exponent 10..15 (values 2^-5 .. 2) and mantissa.
  const r = rng(seed);
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    bits[i] = ((r() < 0.5 ? 1 : 0) << 15) | ((10 + Math.floor(r() * 6)) << 10) | Math.floor(r() * 1024);
  }
  return { raw: bits, values: f16ToF32(bits) };
}

function makeWeight(
  ctx: GpuContext,
  name: string,
  shape: [number, number],
  dtype: DType,
  seed: number,
): { w: Weight; values: Float32Array } {
  const { raw, values } = weightData(shape[0] * shape[1], dtype, seed);
  const t = ctx.upload(raw, shape, dtype, name);
  return { w: { name, shape, dtype, parts: [t], rowsPerPart: shape[0] }, values };
}

const SHAPES: [number, number, number][] = [
  [1, 7, 7],
  [5, 64, 129],
  [33, 129, 64],
];

describe('linear', () => {
  for (const [N, inF, outF] of SHAPES) {
    for (const fanInFanOut of [false, true]) {
      for (const dtype of ['f32', 'bf16', 'f16'] as const) {
        it(`N=${N} ${inF}→${outF} ${fanInFanOut ? 'Conv1D [in,out]' : 'Linear [out,in]'} ${dtype}`, async () => {
          const ctx = await testGpu();
          const shape: [number, number] = fanInFanOut ? [inF, outF] : [outF, inF];
          const { w, values } = makeWeight(ctx, 'layer.weight', shape, dtype, N + inF + outF);
          const bias = makeWeight(ctx, 'layer.bias', [1, outF], dtype, 99);
          const xv = uniform(N * inF, 1);
          const dyv = uniform(N * outF, 2);
          const x = ctx.upload(xv, [N, inF], 'f32', 'x');
          const dy = ctx.upload(dyv, [N, outF], 'f32', 'dy');
          const y = linearForward(ctx, x, w, bias.w, { fanInFanOut });
          const want = linearForwardRef(xv, values, bias.values, N, inF, outF, fanInFanOut);
          expect(compare(await ctx.read(y), want, tolFor(inF))).toBeNull();
          const dx = linearBackward(ctx, dy, w, { fanInFanOut });
          const wantDx = linearBackwardRef(dyv, values, N, inF, outF, fanInFanOut);
          expect(compare(await ctx.read(dx), wantDx, tolFor(outF))).toBeNull();
          for (const t of [x, dy, y, dx, w.parts[0], bias.w.parts[0]]) t.dispose();
        });
      }
    }
  }

  it('adds an f32 bias tensor, and works without bias', async () => {
    const ctx = await testGpu();
    const [N, inF, outF] = [3, 5, 6];
    const { w, values } = makeWeight(ctx, 'c_attn.weight', [inF, outF], 'f32', 3);
    const bv = uniform(outF, 4);
    const b = ctx.upload(bv, [outF], 'f32', 'c_attn.bias');
    const xv = uniform(N * inF, 5);
    const x = ctx.upload(xv, [N, inF], 'f32', 'x');
    const y = linearForward(ctx, x, w, b, { fanInFanOut: true });
    expect(
      compare(await ctx.read(y), linearForwardRef(xv, values, bv, N, inF, outF, true), tolFor(inF)),
    ).toBeNull();
    const y0 = linearForward(ctx, x, w, undefined, { fanInFanOut: true });
    const want0 = linearForwardRef(xv, values, undefined, N, inF, outF, true);
    expect(compare(await ctx.read(y0), want0, tolFor(inF))).toBeNull();
  });

  it('accumulates dX into a given tensor', async () => {
    const ctx = await testGpu();
    const [N, inF, outF] = [4, 9, 5];
    const { w, values } = makeWeight(ctx, 'q_proj.weight', [outF, inF], 'bf16', 6);
    const dyv = uniform(N * outF, 7);
    const dx0 = uniform(N * inF, 8);
    const dy = ctx.upload(dyv, [N, outF], 'f32', 'dy');
    const dx = ctx.upload(dx0, [N, inF], 'f32', 'dx');
    const out = linearBackward(ctx, dy, w, { fanInFanOut: false, accumulateInto: dx });
    expect(out).toBe(dx);
    const want = linearBackwardRef(dyv, values, N, inF, outF, false).map((v, i) => v + dx0[i]);
    expect(compare(await ctx.read(dx), want, tolFor(outF))).toBeNull();
  });

  it('reference dX matches central finite differences of Σ dy ⊙ y', () => {
    const [N, inF, outF] = [2, 3, 4];
    const w = uniform(inF * outF, 9);
    const dy = uniform(N * outF, 10);
    for (const fanInFanOut of [false, true]) {
      const x = Float64Array.from(uniform(N * inF, 11));
      const loss = () =>
        linearForwardRef(x, w, undefined, N, inF, outF, fanInFanOut).reduce((s, v, i) => s + v * dy[i], 0);
      const fd = new Float64Array(x.length);
      const h = 1e-5;
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        x[i] = v + h;
        const up = loss();
        x[i] = v - h;
        const down = loss();
        x[i] = v;
        fd[i] = (up - down) / (2 * h);
      }
      const want = linearBackwardRef(dy, w, N, inF, outF, fanInFanOut);
      expect(compare(fd, want, { rel: 1e-7, abs: 1e-9 })).toBeNull();
    }
  });

  it('names the tensor when shapes or parts do not fit', async () => {
    const ctx = await testGpu();
    const { w } = makeWeight(ctx, 'model.layers.0.mlp.up_proj.weight', [6, 4], 'f32', 12);
    const x = ctx.zeros([2, 5], 'f32', 'h');
    expect(() => linearForward(ctx, x, w, undefined, { fanInFanOut: false })).toThrow(
      /up_proj.weight input h/,
    );
    const split: Weight = { ...w, parts: [w.parts[0], w.parts[0]], rowsPerPart: 3 };
    const x4 = ctx.zeros([2, 4], 'f32', 'h4');
    expect(() => linearForward(ctx, x4, split, undefined, { fanInFanOut: false })).toThrow(
      /up_proj.weight: parts hold 12 rows, the weight has 6/,
    );
  });

  for (const fanInFanOut of [false, true]) {
    it(`a weight split in row parts gives the one-part result (${fanInFanOut ? 'Conv1D [in, out]' : 'nn.Linear [out, in]'})`, async () => {
      const ctx = await testGpu();
      const [N, rows, cols] = [9, 13, 10];
      const { raw } = weightData(rows * cols, 'bf16', 21);
      const whole = makeWeight(ctx, 'w', [rows, cols], 'bf16', 21).w;
      const cuts = [0, 6, 12, 13];
      const parts = cuts
        .slice(0, -1)
        .map((r0, k) =>
          ctx.upload(
            (raw as Uint16Array).slice(r0 * cols, cuts[k + 1] * cols),
            [cuts[k + 1] - r0, cols],
            'bf16',
            `w.${k}`,
          ),
        );
      const split: Weight = { name: 'w', shape: [rows, cols], dtype: 'bf16', parts, rowsPerPart: 6 };
      const [inF, outF] = fanInFanOut ? [rows, cols] : [cols, rows];
      const xd = uniform(N * inF, 22);
      const dyd = uniform(N * outF, 23);
      const x = ctx.upload(xd, [N, inF], 'f32', 'x');
      const dy = ctx.upload(dyd, [N, outF], 'f32', 'dy');
      const o = { fanInFanOut };
      // NOTE: splitting K changes only the order of the f32 sums; splitting the output columns changes nothing.
      const tol = { rel: 1e-5, abs: 1e-6 };
      expect(
        compare(
          await ctx.read(linearForward(ctx, x, split, undefined, o)),
          await ctx.read(linearForward(ctx, x, whole, undefined, o)),
          tol,
        ),
      ).toBeNull();
      expect(
        compare(
          await ctx.read(linearBackward(ctx, dy, split, o)),
          await ctx.read(linearBackward(ctx, dy, whole, o)),
          tol,
        ),
      ).toBeNull();
      const acc1 = ctx.upload(uniform(N * inF, 24), [N, inF], 'f32', 'acc1');
      const acc2 = ctx.upload(uniform(N * inF, 24), [N, inF], 'f32', 'acc2');
      linearBackward(ctx, dy, split, { ...o, accumulateInto: acc1 });
      linearBackward(ctx, dy, whole, { ...o, accumulateInto: acc2 });
      expect(compare(await ctx.read(acc1), await ctx.read(acc2), tol)).toBeNull();
    });
  }
});
