// The events a training run emits (to the UI, the CLI's --json output, the worker protocol).
import type { Advice } from './advice';

/** Emitted after every optimizer step that was applied. */
export interface StepMetrics {
  step: number;
  /** Fractional, as Transformers: epoch index + micro-batches consumed in it / micro-batches per epoch. */
  epoch: number;
  /** Mean loss over all trained tokens of every micro-batch of the step. */
  loss: number;
  /** Global L2 norm of all LoRA gradients before clipping. */
  grad_norm: number;
  /** The learning rate this step used. */
  learning_rate: number;
  /** Trained tokens (labels not -100) seen so far, this step included. */
  tokens: number;
  /** Trained tokens per second since this session started. */
  tokens_per_second: number;
  /** Seconds trained, earlier sessions of a resumed run included. */
  elapsed: number;
  /** Seconds left, estimated from this session's pace. */
  eta: number;
  /** Bytes of GPU buffers live now. */
  gpu_bytes: number;
}

export type EndStatus = 'completed' | 'stopped' | 'diverged' | 'device_lost';

export type TrainerEvent =
  | {
      type: 'start';
      totalSteps: number;
      stepsPerEpoch: number;
      epochs: number;
      warmupSteps: number;
      rows: number;
      /** Checkpoint folder resumed from, or null for a fresh run. */
      resumedFrom: string | null;
      step: number;
    }
  | ({ type: 'step' } & StepMetrics)
  | { type: 'eval'; step: number; epoch: number; eval_loss: number; eval_ppl: number; eval_tokens: number }
  | {
      type: 'skip';
      step: number;
      learning_rate: number;
      reason: string;
      /** Skipped steps in a row, this one included. */
      consecutive: number;
    }
  | ({ type: 'advice' } & Advice)
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'end'; status: EndStatus; step: number; message: string };

export type TrainerListener = (e: TrainerEvent) => void;
