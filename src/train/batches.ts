// The data order: seeded shuffling per epoch, micro-batches, and their grouping into optimizer steps as Transformers.
import type { Batch } from '../model/trainable';

/** One tokenized example. labels use -100 for tokens that are not trained. */
export interface Example {
  inputIds: Int32Array;
  labels: Int32Array;
}

export type Collate = (examples: readonly Example[]) => Batch;

export interface StepPlan {
  /** Micro-batches per epoch: ceil(rows / batch_size), the last one partial (dataloader_drop_last = False). */
  batchesPerEpoch: number;
  /** num_update_steps_per_epoch = max(ceil(batches / grad_accum), 1). */
  stepsPerEpoch: number;
  /** num_training_steps: max_steps when > 0, else ceil(num_train_epochs · steps per epoch). */
  totalSteps: number;
  /** Epochs the loop starts: ceil(total / steps per epoch) (with max_steps, as Transformers derives it). */
  epochs: number;
}

export function planSteps(
  rows: number,
  batchSize: number,
  gradAccum: number,
  epochs: number,
  maxSteps: number,
): StepPlan {
  if (rows <= 0) throw new Error('the training set is empty');
  if (batchSize < 1 || gradAccum < 1)
    throw new Error('batch size and gradient accumulation must be at least 1');
  const batchesPerEpoch = Math.ceil(rows / batchSize);
  const stepsPerEpoch = Math.max(1, Math.ceil(batchesPerEpoch / gradAccum));
  const totalSteps = maxSteps > 0 ? maxSteps : Math.ceil(epochs * stepsPerEpoch);
  if (totalSteps < 1) throw new Error('no optimizer steps: set --epochs above 0 or --max-steps');
  return { batchesPerEpoch, stepsPerEpoch, totalSteps, epochs: Math.ceil(totalSteps / stepsPerEpoch) };
}

/**
 * The micro-batch indices (within the epoch) of update step `k` of an epoch. As Transformers' inner loop since its
 * gradient-accumulation fix: every group has grad_accum micro-batches except the epoch's last, which takes the
 * remainder; accumulation never spans two epochs.
 */
export function stepGroup(plan: StepPlan, gradAccum: number, k: number): number[] {
  const start = k * gradAccum;
  const end = Math.min(start + gradAccum, plan.batchesPerEpoch);
  const out: number[] = [];
  for (let i = start; i < end; i++) out.push(i);
  return out;
}

/** splitmix32: a small, well-mixed generator whose whole state is one 32-bit word (saved in checkpoints). */
export function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * The example order of an epoch: a Fisher–Yates shuffle keyed by (seed, epoch), like Transformers' RandomSampler
 * reseeded per epoch. The order depends on nothing else, so a resumed run rebuilds it; checkpoints also store it.
 * (Transformers draws from torch's generator; matching its permutation bit for bit is not a goal.)
 */
export function epochOrder(rows: number, seed: number, epoch: number, shuffle = true): Uint32Array {
  const order = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) order[i] = i;
  if (!shuffle) return order;
  const next = splitmix32(Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x632be5ab));
  for (let i = rows - 1; i > 0; i--) {
    // Multiply-shift maps 32 random bits onto 0..i with a negligible bias for any realistic row count.
    const j = Math.floor((next() / 4294967296) * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** The examples of micro-batch `b` of an epoch. */
export function microBatch(
  examples: readonly Example[],
  order: Uint32Array,
  batchSize: number,
  b: number,
): Example[] {
  const out: Example[] = [];
  const end = Math.min((b + 1) * batchSize, order.length);
  for (let i = b * batchSize; i < end; i++) out.push(examples[order[i]]);
  return out;
}
