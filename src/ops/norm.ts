// RMSNorm and LayerNorm over the last dimension, forward and backward (frozen weights: the backward gives dX only).
import type { GpuContext } from '../gpu/context';
import type { DType } from '../gpu/dtype';
import type { BindingKind, KernelSpec } from '../gpu/kernel';
import { Params } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { expectShape } from '../gpu/tensor';
import { spreadGroups } from './elementwise';
import { readableAs } from './wgsl';

/**
 * Lanes that share one row: one per 64 columns, a power of two in 1..256, so that each lane sums 64 to 127
 * columns sequentially (fewer when C < 64, more past C = 32767). A small row (C ≤ 127) is one invocation with no
 * reduction and no barrier; a wide one (C = 4096: 64 lanes) a coalesced cooperative reduction of log2(lanes) steps.
 */
function normLanes(C: number): number {
  let lanes = 1;
  while (lanes < 256 && lanes * 2 * 64 <= C) lanes *= 2;
  return lanes;
}

/** Invocations per workgroup: at least 64 (several rows per workgroup when a row has fewer lanes). */
const groupSize = (lanes: number) => Math.max(64, lanes);

function spec(
  entry: string,
  bindings: readonly BindingKind[],
  C: number,
  weight: DType,
  bias: DType = 'f32',
): KernelSpec {
  const lanes = normLanes(C);
  // bias is declared for every entry because the four entries share one module.
  return {
    shader: 'norm',
    entry,
    bindings,
    prelude:
      `const LPR: u32 = ${lanes}u;\nconst WG: u32 = ${groupSize(lanes)}u;\n` +
      readableAs('weight', 2, weight) +
      readableAs('bias', 6, bias),
  };
}

/** x[N, C] checked, with the per-column vectors [C]; returns [N, C]. */
function rowsOf(op: string, x: Tensor, ...vecs: Tensor[]): [number, number] {
  if (x.shape.length !== 2 || x.dtype !== 'f32') throw new Error(`${op}: ${x} (x) must be f32 [N, C]`);
  const [N, C] = x.shape;
  for (const v of vecs) expectShape(v, [C], `${op}: ${v.label}`);
  return [N, C];
}

function run(ctx: GpuContext, s: KernelSpec, N: number, C: number, eps: number, ts: Tensor[]): void {
  ctx.dispatch(s, {
    bindings: [new Params().u32(N).u32(C).f32(eps).bytes(), ...ts],
    workgroups: spreadGroups(ctx, Math.ceil((N * normLanes(C)) / groupSize(normLanes(C)))),
    label: `${s.entry} ${N}x${C}`,
  });
}

/**
 * y[N, C] = weight · (x · rsqrt(mean(x²) + eps)), as HF's LlamaRMSNorm in f32. Saves rstd[N] for the backward.
 * NOTE: like HF in f32, mean(x²) overflows for |x| beyond ~1e18; activations never get there.
 */
export function rmsNormForward(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  eps: number,
): { y: Tensor; rstd: Tensor } {
  const [N, C] = rowsOf('rmsNorm', x, weight);
  const y = ctx.empty([N, C], 'f32', 'rmsnorm.y');
  const rstd = ctx.empty([N], 'f32', 'rmsnorm.rstd');
  run(ctx, spec('rms_forward', ['uniform', 'rw', 'read', 'read', 'rw'], C, weight.dtype), N, C, eps, [
    y,
    weight,
    x,
    rstd,
  ]);
  return { y, rstd };
}

/** dx[N, C] of rmsNormForward, given its input x, weight, saved rstd[N] and dy[N, C]. */
export function rmsNormBackward(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  rstd: Tensor,
  dy: Tensor,
): Tensor {
  const [N, C] = rowsOf('rmsNormBackward', x, weight);
  expectShape(rstd, [N], 'rmsNormBackward: rstd');
  expectShape(dy, [N, C], 'rmsNormBackward: dy');
  const dx = ctx.empty([N, C], 'f32', 'rmsnorm.dx');
  run(
    ctx,
    spec('rms_backward', ['uniform', 'rw', 'read', 'read', 'read', 'read'], C, weight.dtype),
    N,
    C,
    0,
    [dx, weight, x, rstd, dy],
  );
  return dx;
}

/** y[N, C] = (x − mean) · rstd · weight + bias, as torch's layer_norm. Saves mean[N] and rstd[N] for the backward. */
export function layerNormForward(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps: number,
): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const [N, C] = rowsOf('layerNorm', x, weight, bias);
  const y = ctx.empty([N, C], 'f32', 'layernorm.y');
  const mean = ctx.empty([N], 'f32', 'layernorm.mean');
  const rstd = ctx.empty([N], 'f32', 'layernorm.rstd');
  run(
    ctx,
    spec('ln_forward', ['uniform', 'rw', 'read', 'read', 'rw', 'rw', 'read'], C, weight.dtype, bias.dtype),
    N,
    C,
    eps,
    [y, weight, x, rstd, mean, bias],
  );
  return { y, mean, rstd };
}

/** dx[N, C] of layerNormForward, given its input x, weight, saved mean[N], rstd[N] and dy[N, C]. */
export function layerNormBackward(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  mean: Tensor,
  rstd: Tensor,
  dy: Tensor,
): Tensor {
  const [N, C] = rowsOf('layerNormBackward', x, weight);
  expectShape(mean, [N], 'layerNormBackward: mean');
  expectShape(rstd, [N], 'layerNormBackward: rstd');
  expectShape(dy, [N, C], 'layerNormBackward: dy');
  const dx = ctx.empty([N, C], 'f32', 'layernorm.dx');
  run(
    ctx,
    spec('ln_backward', ['uniform', 'rw', 'read', 'read', 'read', 'read', 'read'], C, weight.dtype),
    N,
    C,
    0,
    [dx, weight, x, rstd, dy, mean],
  );
  return dx;
}
