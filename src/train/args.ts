// The train command's flags, parsed into typed TrainingArgs with Transformers' and PEFT's defaults, and validated.
import type { OptionSpec, ParsedValues } from '../cli/command';
import { int, num, str, UsageError } from '../cli/command';
import type { OptimizerKind } from './optimizer';
import type { SchedulerKind } from './schedule';
import { SCHEDULERS } from './schedule';
import type { TrainerConfig } from './trainer';

export type WeightsDtype = 'auto' | 'f32' | 'f16' | 'bf16';

/**
 * Defaults: training as transformers.TrainingArguments (learning_rate 5e-5, lr_scheduler_type linear,
 * num_train_epochs 3, per_device_train_batch_size 8, gradient_accumulation_steps 1, max_grad_norm 1.0,
 * weight_decay 0, warmup 0, adam 0.9 / 0.999 / 1e-8, seed 42, save_steps 500) except logging_steps (1 here, 500
 * there); LoRA as peft.LoraConfig (r 8, lora_alpha 8, lora_dropout 0, use_rslora false, target_modules: the
 * architecture's default).
 */
export interface TrainingArgs {
  model: string;
  data: string;
  out: string;
  /** Comma-separated module names, or a regex as PEFT accepts; null = the architecture's PEFT default. */
  target: string | null;
  r: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  lr: number;
  scheduler: SchedulerKind;
  warmupSteps: number;
  warmupRatio: number;
  /** null = the scheduler's default (cosine 0.5, cosine_with_restarts 1). */
  numCycles: number | null;
  batchSize: number;
  gradAccum: number;
  epochs: number;
  /** -1 = train --epochs epochs (Transformers' max_steps default). */
  maxSteps: number;
  maxLen: number;
  optim: OptimizerKind;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  maxGradNorm: number;
  gradCheckpointing: boolean;
  weightsDtype: WeightsDtype;
  seed: number;
  evalData: string | null;
  /** Fraction of --data held out for evaluation (0 = none). */
  evalSplit: number;
  /** 0 = no periodic evaluation; default 50 when there is eval data. */
  evalSteps: number;
  /** 0 = no periodic checkpoints (a stop still saves one). */
  saveSteps: number;
  loggingSteps: number;
  initAdapter: string | null;
  /** Resume from the latest complete checkpoint in --out. */
  resume: boolean;
  /** Print events as JSON lines. */
  json: boolean;
}

export const TRAIN_OPTIONS: OptionSpec = {
  model: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  target: { type: 'string' },
  r: { type: 'string' },
  alpha: { type: 'string' },
  dropout: { type: 'string' },
  rslora: { type: 'boolean' },
  lr: { type: 'string' },
  scheduler: { type: 'string' },
  'warmup-steps': { type: 'string' },
  'warmup-ratio': { type: 'string' },
  'num-cycles': { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  epochs: { type: 'string' },
  'max-steps': { type: 'string' },
  'max-len': { type: 'string' },
  optim: { type: 'string' },
  'weight-decay': { type: 'string' },
  'adam-beta1': { type: 'string' },
  'adam-beta2': { type: 'string' },
  'adam-eps': { type: 'string' },
  'max-grad-norm': { type: 'string' },
  'grad-checkpointing': { type: 'boolean' },
  'weights-dtype': { type: 'string' },
  seed: { type: 'string' },
  'eval-data': { type: 'string' },
  'eval-split': { type: 'string' },
  'eval-steps': { type: 'string' },
  'save-steps': { type: 'string' },
  'logging-steps': { type: 'string' },
  'init-adapter': { type: 'string' },
  resume: { type: 'boolean' },
  json: { type: 'boolean' },
};

export const TRAIN_USAGE = `lora-studio train --model M --data FILE --out DIR [flags]
  --target q_proj,v_proj   modules to adapt (names or a regex; default: the architecture's PEFT default)
  --r 8 --alpha 8 --dropout 0 [--rslora]      LoRA rank, lora_alpha, lora_dropout (PEFT defaults)
  --lr 5e-5 --scheduler linear                linear | cosine | cosine_with_restarts | constant | constant_with_warmup
  --warmup-steps 0 | --warmup-ratio 0         warmup steps, or ceil(ratio · total steps)
  --num-cycles N                              cosine waves (cosine 0.5, cosine_with_restarts 1)
  --batch-size 8 --grad-accum 1               micro-batch rows; micro-batches per optimizer step
  --epochs 3 | --max-steps N                  --max-steps overrides --epochs
  --max-len 1024                              tokens per example (longer ones are cut)
  --optim adamw|sgd --weight-decay 0 --adam-beta1 0.9 --adam-beta2 0.999 --adam-eps 1e-8
  --max-grad-norm 1.0                         clip the global gradient norm (0: off)
  --grad-checkpointing --weights-dtype auto|f32|f16|bf16
  --seed 42 --eval-data FILE --eval-split 0.1 --eval-steps 50 --save-steps 500 --logging-steps 1
  --init-adapter DIR --resume --json`;

function oneOf<T extends string>(v: unknown, flag: string, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}; got "${String(v)}"`);
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new UsageError(message);
}

const optStr = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

export function parseTrainingArgs(v: ParsedValues): TrainingArgs {
  const a: TrainingArgs = {
    model: str(v.model, 'model'),
    data: str(v.data, 'data'),
    out: str(v.out, 'out'),
    target: optStr(v.target),
    r: int(v.r, 'r', 8),
    alpha: num(v.alpha, 'alpha', 8),
    dropout: num(v.dropout, 'dropout', 0),
    rslora: v.rslora === true,
    lr: num(v.lr, 'lr', 5e-5),
    scheduler: oneOf(v.scheduler, 'scheduler', SCHEDULERS, 'linear'),
    warmupSteps: int(v['warmup-steps'], 'warmup-steps', 0),
    warmupRatio: num(v['warmup-ratio'], 'warmup-ratio', 0),
    numCycles: v['num-cycles'] === undefined ? null : num(v['num-cycles'], 'num-cycles', 0),
    batchSize: int(v['batch-size'], 'batch-size', 8),
    gradAccum: int(v['grad-accum'], 'grad-accum', 1),
    epochs: num(v.epochs, 'epochs', 3),
    maxSteps: int(v['max-steps'], 'max-steps', -1),
    maxLen: int(v['max-len'], 'max-len', 1024),
    optim: oneOf(v.optim, 'optim', ['adamw', 'sgd'] as const, 'adamw'),
    weightDecay: num(v['weight-decay'], 'weight-decay', 0),
    adamBeta1: num(v['adam-beta1'], 'adam-beta1', 0.9),
    adamBeta2: num(v['adam-beta2'], 'adam-beta2', 0.999),
    adamEps: num(v['adam-eps'], 'adam-eps', 1e-8),
    maxGradNorm: num(v['max-grad-norm'], 'max-grad-norm', 1),
    gradCheckpointing: v['grad-checkpointing'] === true,
    weightsDtype: oneOf(v['weights-dtype'], 'weights-dtype', ['auto', 'f32', 'f16', 'bf16'] as const, 'auto'),
    seed: int(v.seed, 'seed', 42),
    evalData: optStr(v['eval-data']),
    evalSplit: num(v['eval-split'], 'eval-split', 0),
    evalSteps: 0,
    saveSteps: int(v['save-steps'], 'save-steps', 500),
    loggingSteps: int(v['logging-steps'], 'logging-steps', 1),
    initAdapter: optStr(v['init-adapter']),
    resume: v.resume === true,
    json: v.json === true,
  };
  const hasEval = a.evalData !== null || a.evalSplit > 0;
  a.evalSteps = int(v['eval-steps'], 'eval-steps', hasEval ? 50 : 0);
  check(a.r >= 1, `--r must be at least 1, got ${a.r}`);
  check(a.alpha > 0, `--alpha must be positive, got ${a.alpha}`);
  check(a.dropout >= 0 && a.dropout < 1, `--dropout must be in [0, 1), got ${a.dropout}`);
  check(a.lr >= 0, `--lr must be >= 0, got ${a.lr}`);
  check(a.warmupSteps >= 0, `--warmup-steps must be >= 0, got ${a.warmupSteps}`);
  check(a.warmupRatio >= 0 && a.warmupRatio <= 1, `--warmup-ratio must be in [0, 1], got ${a.warmupRatio}`);
  check(
    !(
      v['warmup-steps'] !== undefined &&
      v['warmup-ratio'] !== undefined &&
      a.warmupSteps > 0 &&
      a.warmupRatio > 0
    ),
    '--warmup-steps and --warmup-ratio both given: use one (as Transformers, the steps would win)',
  );
  check(a.numCycles === null || a.numCycles > 0, `--num-cycles must be positive, got ${a.numCycles}`);
  check(a.batchSize >= 1, `--batch-size must be at least 1, got ${a.batchSize}`);
  check(a.gradAccum >= 1, `--grad-accum must be at least 1, got ${a.gradAccum}`);
  check(a.maxSteps > 0 || a.epochs > 0, '--epochs must be positive (or give --max-steps)');
  check(a.maxSteps === -1 || a.maxSteps > 0, `--max-steps must be positive, got ${a.maxSteps}`);
  check(a.maxLen >= 2, `--max-len must be at least 2, got ${a.maxLen}`);
  check(a.weightDecay >= 0, `--weight-decay must be >= 0, got ${a.weightDecay}`);
  check(a.adamBeta1 >= 0 && a.adamBeta1 < 1, `--adam-beta1 must be in [0, 1), got ${a.adamBeta1}`);
  check(a.adamBeta2 >= 0 && a.adamBeta2 < 1, `--adam-beta2 must be in [0, 1), got ${a.adamBeta2}`);
  check(a.adamEps > 0, `--adam-eps must be positive, got ${a.adamEps}`);
  check(a.maxGradNorm >= 0, `--max-grad-norm must be >= 0 (0 turns clipping off), got ${a.maxGradNorm}`);
  check(a.evalSplit >= 0 && a.evalSplit < 1, `--eval-split must be in [0, 1), got ${a.evalSplit}`);
  check(a.evalSteps >= 0 && a.saveSteps >= 0, '--eval-steps and --save-steps must be >= 0');
  check(a.loggingSteps >= 1, `--logging-steps must be at least 1, got ${a.loggingSteps}`);
  check(!(a.evalData !== null && a.evalSplit > 0), '--eval-data and --eval-split both given: use one');
  return a;
}

/** The Trainer's part of the arguments. */
export function trainerConfig(a: TrainingArgs): TrainerConfig {
  return {
    learningRate: a.lr,
    scheduler: a.scheduler,
    warmupSteps: a.warmupSteps,
    warmupRatio: a.warmupRatio,
    numCycles: a.numCycles ?? undefined,
    batchSize: a.batchSize,
    gradAccum: a.gradAccum,
    epochs: a.epochs,
    maxSteps: a.maxSteps > 0 ? a.maxSteps : 0,
    optimizer: {
      kind: a.optim,
      beta1: a.adamBeta1,
      beta2: a.adamBeta2,
      eps: a.adamEps,
      weightDecay: a.weightDecay,
    },
    maxGradNorm: a.maxGradNorm,
    seed: a.seed,
    evalSteps: a.evalSteps,
    saveSteps: a.saveSteps,
    loggingSteps: a.loggingSteps,
  };
}
