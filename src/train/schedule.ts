// Learning-rate schedules exactly as transformers.optimization: lr(s) = base_lr · lambda(s), s = steps already taken.

export type SchedulerKind =
  'linear' | 'cosine' | 'cosine_with_restarts' | 'constant' | 'constant_with_warmup';

export const SCHEDULERS: readonly SchedulerKind[] = [
  'linear',
  'cosine',
  'cosine_with_restarts',
  'constant',
  'constant_with_warmup',
];

export interface ScheduleConfig {
  kind: SchedulerKind;
  /** num_training_steps: every optimizer step of the run (max_steps, or epochs · update steps per epoch). */
  totalSteps: number;
  warmupSteps: number;
  /** cosine: 0.5 (half a wave, from 1 down to 0); cosine_with_restarts: 1 (hard restarts). */
  numCycles?: number;
}

/**
 * TrainingArguments.get_warmup_steps: warmup_steps when > 0, else ceil(warmup_ratio · num_training_steps).
 */
export function warmupSteps(totalSteps: number, steps: number, ratio: number): number {
  return steps > 0 ? steps : Math.ceil(totalSteps * ratio);
}

/** The multiplier of the base learning rate for the step taken after `s` optimizer steps (the first step uses s = 0). */
export function lrLambda(c: ScheduleConfig, s: number): number {
  const W = c.warmupSteps;
  const T = c.totalSteps;
  const warm = () => s / Math.max(1, W);
  switch (c.kind) {
    case 'constant':
      // get_constant_schedule ignores warmup.
      return 1;
    case 'constant_with_warmup':
      return s < W ? warm() : 1;
    case 'linear':
      return s < W ? warm() : Math.max(0, (T - s) / Math.max(1, T - W));
    case 'cosine': {
      if (s < W) return warm();
      const progress = (s - W) / Math.max(1, T - W);
      const cycles = c.numCycles ?? 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    }
    case 'cosine_with_restarts': {
      if (s < W) return warm();
      const progress = (s - W) / Math.max(1, T - W);
      if (progress >= 1) return 0;
      const cycles = c.numCycles ?? 1;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * progress) % 1))));
    }
    default:
      return c.kind satisfies never;
  }
}

/** The learning rate used by optimizer step number `step` (1-based, as logged): base · lambda(step − 1). */
export function learningRateAt(baseLr: number, c: ScheduleConfig, step: number): number {
  return baseLr * lrLambda(c, step - 1);
}
