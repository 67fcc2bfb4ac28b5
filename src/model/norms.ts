// RMSNorm (Llama, Qwen2) or LayerNorm (GPT-2), chosen by the spec, behind one forward/backward pair.
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { layerNormBackward, layerNormForward, rmsNormBackward, rmsNormForward } from '../ops/norm';
import type { ModelSpec } from './spec';
import type { NormNames } from './architectures/index';

export interface NormState {
  y: Tensor;
  /** Per-row statistics forward saved for backward. */
  rstd: Tensor;
  mean?: Tensor;
  dispose(): void;
}

export function normForward(
  ctx: GpuContext,
  spec: ModelSpec,
  x: Tensor,
  vectors: (name: string) => Tensor,
  names: NormNames,
): NormState {
  const weight = vectors(names.weight);
  if (spec.norm.kind === 'rms') {
    const { y, rstd } = rmsNormForward(ctx, x, weight, spec.norm.eps);
    return { y, rstd, dispose: () => rstd.dispose() };
  }
  if (!names.bias) throw new Error(`LayerNorm ${names.weight} has no bias`);
  const { y, mean, rstd } = layerNormForward(ctx, x, weight, vectors(names.bias), spec.norm.eps);
  return {
    y,
    rstd,
    mean,
    dispose: () => {
      rstd.dispose();
      mean.dispose();
    },
  };
}

/** dx for the norm's input (weights are frozen). The caller owns `s.y`; this does not free it. */
export function normBackward(
  ctx: GpuContext,
  spec: ModelSpec,
  x: Tensor,
  s: NormState,
  vectors: (name: string) => Tensor,
  names: NormNames,
  dy: Tensor,
): Tensor {
  const weight = vectors(names.weight);
  if (spec.norm.kind === 'rms') return rmsNormBackward(ctx, x, weight, s.rstd, dy);
  return layerNormBackward(ctx, x, weight, s.mean!, s.rstd, dy);
}
