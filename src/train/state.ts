// trainer_state.json as Transformers writes it (log_history and friends), our resume block, and metrics.jsonl lines.

/** A training log entry as Transformers' log_history holds it (loss averaged over the logging window). */
export interface TrainLog {
  step: number;
  epoch: number;
  loss: number;
  grad_norm: number;
  /** The learning rate the window's last step used (Transformers logs the next step's; see trainer.ts). */
  learning_rate: number;
}

export interface EvalLog {
  step: number;
  epoch: number;
  eval_loss: number;
  eval_ppl: number;
}

/** The last entry, as Transformers appends at the end of train(). */
export interface SummaryLog {
  step: number;
  epoch: number;
  train_loss: number;
  train_runtime: number;
  train_samples_per_second: number;
  train_steps_per_second: number;
  total_flos: number;
}

export type LogEntry = TrainLog | EvalLog | SummaryLog;

/** What a resumed run needs beyond weights and optimizer state. */
export interface ResumeInfo {
  /** Zero-based epoch the next step belongs to, and the micro-batches of it already consumed. */
  epoch_index: number;
  batches_done: number;
  /** Micro-batches consumed since the start (the dropout key of the next one). */
  micro_step: number;
  seed: number;
  rows: number;
  batch_size: number;
  grad_accum: number;
  total_steps: number;
  /** Seconds trained before this checkpoint, so elapsed and ETA continue. */
  elapsed: number;
  /** Step losses of the current logging window. */
  window_losses: number[];
  /** Sum and count of step losses since the start (train_loss of the summary). */
  loss_sum: number;
  loss_count: number;
  consecutive_bad: number;
}

export interface TrainerStateJson {
  best_metric: number | null;
  best_model_checkpoint: string | null;
  epoch: number;
  eval_steps: number;
  global_step: number;
  is_hyper_param_search: boolean;
  is_local_process_zero: boolean;
  is_world_process_zero: boolean;
  log_history: LogEntry[];
  logging_steps: number;
  max_steps: number;
  num_input_tokens_seen: number;
  num_train_epochs: number;
  save_steps: number;
  stateful_callbacks: Record<string, unknown>;
  total_flos: number;
  train_batch_size: number;
  trial_name: string | null;
  trial_params: Record<string, unknown> | null;
  /** Ours: everything else a resume needs. Transformers ignores unknown keys. */
  lora_studio: ResumeInfo;
}

export interface StateFields {
  globalStep: number;
  epoch: number;
  logHistory: LogEntry[];
  evalSteps: number;
  loggingSteps: number;
  saveSteps: number;
  maxSteps: number;
  numTrainEpochs: number;
  tokensSeen: number;
  batchSize: number;
  bestEval: { loss: number; checkpoint: string | null } | null;
  resume: ResumeInfo;
}

export function trainerStateJson(f: StateFields): TrainerStateJson {
  return {
    best_metric: f.bestEval?.loss ?? null,
    best_model_checkpoint: f.bestEval?.checkpoint ?? null,
    epoch: f.epoch,
    eval_steps: f.evalSteps,
    global_step: f.globalStep,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: f.logHistory,
    logging_steps: f.loggingSteps,
    max_steps: f.maxSteps,
    num_input_tokens_seen: f.tokensSeen,
    num_train_epochs: f.numTrainEpochs,
    save_steps: f.saveSteps,
    stateful_callbacks: {},
    total_flos: 0,
    train_batch_size: f.batchSize,
    trial_name: null,
    trial_params: null,
    lora_studio: f.resume,
  };
}

/**
 * One line of metrics.jsonl: a JSON object ending in a newline. Kinds: `train` (a logging window, with every field of
 * the step event), `eval`, `skip` (a step whose loss or gradients were not finite) and `summary`.
 */
export function metricsLine(kind: 'train' | 'skip', fields: object): string {
  return JSON.stringify({ type: kind, ...fields }) + '\n';
}

/** The step of a metrics.jsonl line (for trimming lines after a checkpoint on resume). */
export function lineStep(line: string): number {
  try {
    const v = JSON.parse(line) as { step?: unknown };
    return typeof v.step === 'number' ? v.step : Infinity;
  } catch {
    return Infinity;
  }
}
