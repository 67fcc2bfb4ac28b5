// Rotary position embedding (HF rotate_half pairs, optional llama3 frequency scaling), forward and backward.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { expectShape } from '../gpu/tensor';
import type { RopeScaling } from '../model/spec';
import { spreadGroups } from './elementwise';

export interface RopeConfig {
  theta: number;
  /** D; when left out (ModelSpec's `rope` has none), it is x's width / heads. When given, it is checked. */
  headDim?: number;
  scaling?: RopeScaling;
}

/**
 * inv_freq[D/2] = 1 / theta^(2i/D), then llama3's smoothing if configured, as transformers'
 * `_compute_default_rope_parameters` and `_compute_llama3_parameters` do (here in float64, rounded to f32 at upload).
 */
export function ropeInvFreq(rope: RopeConfig & { headDim: number }): Float64Array {
  const D = rope.headDim;
  const inv = Float64Array.from({ length: D / 2 }, (_, i) => 1 / rope.theta ** ((2 * i) / D));
  const s = rope.scaling;
  if (!s) return inv;
  const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    if (wavelen < highFreqWavelen) return f;
    const smooth =
      (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return ((1 - smooth) * f) / s.factor + smooth * f;
  });
}

// One small inv_freq tensor per (context, config): every layer of every step uses it, and uploading it each time
// would flush the batch. A model has one rope config, so this holds one or two entries per context.
const invFreqCache = new WeakMap<GpuContext, Map<string, Tensor>>();

function invFreqTensor(ctx: GpuContext, rope: RopeConfig & { headDim: number }): Tensor {
  let byKey = invFreqCache.get(ctx);
  if (!byKey) invFreqCache.set(ctx, (byKey = new Map()));
  const key = JSON.stringify([rope.theta, rope.headDim, rope.scaling ?? null]);
  let t = byKey.get(key);
  if (!t || t.isDisposed) {
    t = ctx.upload(Float32Array.from(ropeInvFreq(rope)), [rope.headDim / 2], 'f32', 'rope.inv_freq');
    byKey.set(key, t);
  }
  return t;
}

function rotate(
  ctx: GpuContext,
  op: string,
  x: Tensor,
  positions: Tensor,
  heads: number,
  rope: RopeConfig,
  sign: 1 | -1,
): Tensor {
  if (x.shape.length !== 2 || x.dtype !== 'f32') throw new Error(`${op}: ${x} must be f32 [N, heads·D]`);
  const N = x.shape[0];
  const D = rope.headDim ?? x.shape[1] / heads;
  if (!Number.isInteger(D) || D < 2 || D % 2 !== 0)
    throw new Error(`${op}: head dim ${D} of ${x} must be even`);
  expectShape(x, [N, heads * D], `${op}: ${x.label} (${heads} heads of ${D})`);
  expectShape(positions, [N], `${op}: ${positions.label} (positions)`);
  if (positions.dtype !== 'i32') throw new Error(`${op}: ${positions} must be i32`);
  const y = ctx.empty([N, heads * D], 'f32', `${op}.out`);
  const total = (N * heads * D) / 2;
  ctx.dispatch(
    { shader: 'rope', entry: 'rope', bindings: ['uniform', 'rw', 'read', 'read', 'read'] },
    {
      bindings: [
        new Params()
          .u32(total)
          .u32(D / 2)
          .u32(heads)
          .f32(sign)
          .bytes(),
        y,
        x,
        positions,
        invFreqTensor(ctx, { ...rope, headDim: D }),
      ],
      workgroups: spreadGroups(ctx, Math.ceil(total / 256)),
      label: `${op} ${N}x${heads}x${D}`,
    },
  );
  return y;
}

/** y[N, H·D] = x rotated per head by position · inv_freq (positions: i32 [N], restarting per packed example). */
export function ropeForward(
  ctx: GpuContext,
  x: Tensor,
  positions: Tensor,
  heads: number,
  rope: RopeConfig,
): Tensor {
  return rotate(ctx, 'rope', x, positions, heads, rope, 1);
}

/** dx[N, H·D] of ropeForward: dy rotated by the negative angle. */
export function ropeBackward(
  ctx: GpuContext,
  dy: Tensor,
  positions: Tensor,
  heads: number,
  rope: RopeConfig,
): Tensor {
  return rotate(ctx, 'ropeBackward', dy, positions, heads, rope, -1);
}
