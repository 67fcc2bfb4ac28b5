// Frozen linear layer (nn.Linear [out, in] or GPT-2 Conv1D [in, out]), in f32, f16 or bf16: y = x·Wᵀ + b and dX only.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import { expectShape } from '../gpu/tensor';
import type { Tensor } from '../gpu/tensor';
import type { Weight } from '../gpu/weight';
import { copy2d } from './elementwise';
import { matmulInto } from './matmul';
import { readableAs } from './wgsl';

export interface LinearOptions {
  /** GPT-2 Conv1D stores its weight [in, out] (PEFT's `fan_in_fan_out`); nn.Linear stores [out, in]. */
  fanInFanOut: boolean;
}

export interface LinearBackwardOptions extends LinearOptions {
  /** Add dX into this tensor instead of allocating one (q, k and v projections share their input). */
  accumulateInto?: Tensor;
}

/** A 1-D launch of `n` invocations in workgroups of 256, folded into 2-D to stay under 65535 per dimension. */
export function grid1d(n: number): { workgroups: [number, number]; stride: number } {
  const groups = Math.ceil(n / 256);
  const x = Math.min(groups, 65535);
  return { workgroups: [x, Math.ceil(groups / x)], stride: x };
}

/** (in, out) features of a frozen weight, checked against the layout, and its parts with their first row. */
function weightOf(
  w: Weight,
  o: LinearOptions,
): { parts: { t: Tensor; row0: number }[]; inF: number; outF: number } {
  const [rows, cols] = w.shape;
  let row0 = 0;
  const parts = w.parts.map((t) => {
    const n = t.shape[0];
    expectShape(t, [n, cols], `${w.name} part from row ${row0}`);
    const p = { t, row0 };
    row0 += n;
    return p;
  });
  if (row0 !== rows) throw new Error(`${w.name}: parts hold ${row0} rows, the weight has ${rows}`);
  return o.fanInFanOut ? { parts, inF: rows, outF: cols } : { parts, inF: cols, outF: rows };
}

/**
 * A weight larger than one storage binding comes in row parts. For nn.Linear [out, in] a part is a block of
 * output columns; for Conv1D [in, out] a block of input columns. Each part is one matmul on a column block.
 */
function matmulParts(
  ctx: GpuContext,
  a: Tensor, // [N, K]
  w: Weight,
  out: Tensor, // [N, M]
  parts: { t: Tensor; row0: number }[],
  blockOfOutput: boolean, // parts split the output columns (else the input columns, i.e. K)
  transB: boolean,
  accumulate: boolean,
): void {
  if (parts.length === 1) {
    matmulInto(ctx, a, parts[0].t, out, { transB, accumulate });
    return;
  }
  const N = a.shape[0];
  const [K, M] = [a.shape[1], out.shape[1]];
  parts.forEach(({ t, row0 }, k) => {
    const n = t.shape[0];
    if (blockOfOutput) {
      // out[:, row0 : row0+n] (+)= a · W_kᵀ   (or a · W_k): through a temporary block.
      const tmp = ctx.empty([N, n], 'f32', `${w.name}.part${k}`);
      if (accumulate) copy2d(ctx, out, tmp, { rows: N, cols: n, srcOffset: row0, srcLd: M });
      matmulInto(ctx, a, t, tmp, { transB, accumulate });
      copy2d(ctx, tmp, out, { rows: N, cols: n, dstOffset: row0, dstLd: M });
      tmp.dispose();
    } else {
      // out (+)= a[:, row0 : row0+n] · W_k   (or W_kᵀ): the K dimension is split.
      const tmp = ctx.empty([N, n], 'f32', `${w.name}.in${k}`);
      copy2d(ctx, a, tmp, { rows: N, cols: n, srcOffset: row0, srcLd: K });
      matmulInto(ctx, tmp, t, out, { transB, accumulate: accumulate || k > 0 });
      tmp.dispose();
    }
  });
}

/**
 * y = x·Wᵀ + b [N, out] for W [out, in], or x·W + b for W [in, out] (fanInFanOut). Saves nothing for backward:
 * the weight is frozen, so backward needs only dy and W.
 */
export function linearForward(
  ctx: GpuContext,
  x: Tensor, // [N, in]
  w: Weight,
  bias: Tensor | Weight | undefined, // [out]
  o: LinearOptions,
): Tensor {
  const { parts, inF, outF } = weightOf(w, o);
  if (x.shape.length !== 2) throw new Error(`linear ${w.name}: input ${x} must be 2-D [N, ${inF}]`);
  const N = x.shape[0];
  expectShape(x, [N, inF], `${w.name} input ${x.label}`);
  const y = ctx.empty([N, outF], 'f32', `${w.name}.out`);
  matmulParts(ctx, x, w, y, parts, !o.fanInFanOut, !o.fanInFanOut, false);
  if (bias) {
    const b = 'parts' in bias ? biasPart(bias) : bias;
    if (b.size !== outF)
      throw new Error(`${b.label}: bias of ${b.size} values for ${outF} outputs of ${w.name}`);
    const g = grid1d(N * outF);
    ctx.dispatch(
      {
        shader: 'linear',
        entry: 'bias_add',
        bindings: ['uniform', 'rw', 'read'],
        prelude: readableAs('bias', 2, b.dtype),
      },
      {
        bindings: [new Params().u32(N).u32(outF).u32(g.stride).bytes(), y, b],
        workgroups: g.workgroups,
        label: `bias ${w.name}`,
      },
    );
  }
  return y;
}

function biasPart(b: Weight): Tensor {
  if (b.parts.length !== 1) throw new Error(`${b.name}: a bias in ${b.parts.length} parts is not supported`);
  return b.parts[0];
}

/** dX = dy·W [N, in] for W [out, in], or dy·Wᵀ for W [in, out]; added into `accumulateInto` when given. */
export function linearBackward(
  ctx: GpuContext,
  dy: Tensor, // [N, out]
  w: Weight,
  o: LinearBackwardOptions,
): Tensor {
  const { parts, inF, outF } = weightOf(w, o);
  if (dy.shape.length !== 2) throw new Error(`linear ${w.name}: gradient ${dy} must be 2-D [N, ${outF}]`);
  const N = dy.shape[0];
  expectShape(dy, [N, outF], `${w.name} dy ${dy.label}`);
  const dx = o.accumulateInto ?? ctx.empty([N, inF], 'f32', `${w.name}.dx`);
  expectShape(dx, [N, inF], `${w.name} dx ${dx.label}`);
  // dX = dy·W: for nn.Linear the parts split K (= out); for Conv1D they split dX's columns (= in).
  matmulParts(ctx, dy, w, dx, parts, o.fanInFanOut, o.fanInFanOut, o.accumulateInto !== undefined);
  return dx;
}
