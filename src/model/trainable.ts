// The contract between the engine and the trainer: one micro-batch forward and backward, LoRA tensors and grads.
import type { Tensor } from '../gpu/tensor';

/** A padded micro-batch, row-major [B, T]. Labels are unshifted as in Transformers: logits at t score labels[t+1]. */
export interface Batch {
  B: number;
  T: number;
  inputIds: Int32Array;
  /** -100 = not trained (prompt tokens, padding). */
  labels: Int32Array;
  /** Position of each token; restarts per packed example. Defaults to 0..T-1 in every row. */
  positionIds?: Int32Array;
  /** Packed examples: attention never crosses from one segment id into another. Absent = one segment per row. */
  segmentIds?: Int32Array;
}

/** Number of positions that contribute to the loss: t < T-1 with labels[t+1] != -100 (within a row). */
export function trainedTokens(b: Batch): number {
  let n = 0;
  for (let row = 0; row < b.B; row++) {
    for (let t = 1; t < b.T; t++) {
      if (b.labels[row * b.T + t] === -100) continue;
      // With packing, a label that starts a new segment is not predicted from the previous segment.
      if (b.segmentIds && b.segmentIds[row * b.T + t] !== b.segmentIds[row * b.T + t - 1]) continue;
      n++;
    }
  }
  return n;
}

export interface LoraParam {
  /** PEFT module path, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string;
  A: Tensor; // [r, in]
  B: Tensor; // [out, r]
  gradA: Tensor; // [r, in]
  gradB: Tensor; // [out, r]
  scaling: number;
}

export interface StepOptions {
  /** Multiplies every gradient: 1 / (trained tokens of the whole optimizer step), as Transformers normalises. */
  gradScale: number;
  /** Receives += the summed token loss of this micro-batch (f32 [1]). */
  lossSum: Tensor;
  /** Keys the dropout masks, so backward (and a resumed run) regenerates them. */
  dropoutStep: number;
}

export interface TrainableModel {
  readonly lora: readonly LoraParam[];
  /** Forward and backward of one micro-batch: adds gradScale · d(summed loss)/d(LoRA) into every gradA / gradB. */
  forwardBackward(batch: Batch, o: StepOptions): void;
  /** Forward only (no dropout): adds the summed token loss into lossSum. */
  forwardLoss(batch: Batch, lossSum: Tensor): void;
  zeroGrads(): void;
}
