// Frozen linear layer (nn.Linear [out, in] or GPT-2 Conv1D [in, out]), in f32, f16 or bf16: y = x·Wᵀ + b and dX only.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import { expectShape } from '../gpu/tensor';
import type { Tensor } from '../gpu/tensor';
import type { Weight } from '../gpu/weight';
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

/** The single part of a frozen weight, its (in, out) features, checked against the layout. */
function weightOf(w: Weight, o: LinearOptions): { part: Tensor; inF: number; outF: number } {
  if (w.parts.length !== 1) {
    throw new Error(
      `${w.name}: linear layers take a weight in one part, this one has ${w.parts.length} (split for binding size)`,
    );
  }
  const [rows, cols] = w.shape;
  const part = w.parts[0];
  expectShape(part, w.shape, w.name);
  return o.fanInFanOut ? { part, inF: rows, outF: cols } : { part, inF: cols, outF: rows };
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
  const { part, inF, outF } = weightOf(w, o);
  if (x.shape.length !== 2) throw new Error(`linear ${w.name}: input ${x} must be 2-D [N, ${inF}]`);
  const N = x.shape[0];
  expectShape(x, [N, inF], `${w.name} input ${x.label}`);
  const y = ctx.empty([N, outF], 'f32', `${w.name}.out`);
  matmulInto(ctx, x, part, y, { transB: !o.fanInFanOut });
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
  const { part, inF, outF } = weightOf(w, o);
  if (dy.shape.length !== 2) throw new Error(`linear ${w.name}: gradient ${dy} must be 2-D [N, ${outF}]`);
  const N = dy.shape[0];
  expectShape(dy, [N, outF], `${w.name} dy ${dy.label}`);
  const dx = o.accumulateInto ?? ctx.empty([N, inF], 'f32', `${w.name}.dx`);
  expectShape(dx, [N, inF], `${w.name} dx ${dx.label}`);
  matmulInto(ctx, dy, part, dx, { transB: o.fanInFanOut, accumulate: o.accumulateInto !== undefined });
  return dx;
}
