// The typed contract between the page and the GPU worker: commands in, events out, errors as values.
import type { GpuReport } from '../gpu/acquire';
import type { PoolStats } from '../gpu/pool';

/** Chosen by the page, unique per command; every reply to a command carries it back. */
export type RequestId = number;
/** Chosen by the worker when a run starts; every event of that run carries it. */
export type RunId = string;

// ---- payloads ----------------------------------------------------------------------------------

export type SchedulerName = 'linear' | 'cosine' | 'constant' | 'constant_with_warmup';

/** Hyperparameters of one run, with PEFT / Transformers names where they exist. */
export interface TrainConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  learning_rate: number;
  num_train_epochs: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  lr_scheduler_type: SchedulerName;
  warmup_steps: number;
  max_length: number;
  /** Optimizer steps to train; 0 = train `num_train_epochs` epochs (Transformers' max_steps = -1). */
  max_steps: number;
  /** Fraction of the dataset held out for Evaluate (0 = score the training rows). */
  eval_split: number;
}

/** Where the weights come from: a Hub repository id, or files the user dropped (a model folder). */
export type ModelSource = { kind: 'hub'; repo: string; revision?: string } | { kind: 'files'; files: File[] };

export interface DatasetSource {
  files: File[];
}

export interface ModelInfo {
  name: string;
  architecture: string;
  parameters: number;
  layers?: number;
  hiddenSize?: number;
  vocabSize?: number;
  /** Storage of the weights on the GPU. */
  weightsDtype?: string;
  gpuBytes?: number;
}

/** What the data pipeline made of the dataset file (a summary of data/pipeline DatasetReport). */
export interface DatasetSummary {
  file: string;
  format: string;
  rowsRead: number;
  rowsUsed: number;
  skipped: number;
  /** The first few skipped rows, with why ("line 6: no completion"). */
  skippedExamples: string[];
  truncated: number;
  duplicates: number;
  trainedTokens: number;
  trainExamples: number;
  evalExamples: number;
  maxLength: number;
}

/** Eval loss of the base model and of the tuned one, with a greedy continuation of one prompt by each. */
export interface EvalResult {
  /** Which examples were scored: the held-out split, or the training rows when there is none. */
  split: 'eval' | 'train';
  examples: number;
  tokens: number;
  loss: number;
  ppl: number;
  baseLoss: number;
  basePpl: number;
  prompt: string;
  base: string;
  tuned: string;
}

/** A file the worker produced, its bytes transferred (not copied) to the page. */
export interface ExportedFile {
  name: string;
  data: ArrayBuffer;
}

export type ExportKind = 'adapter' | 'merged';

/** A run whose checkpoints are kept in the browser (OPFS): what the page lists after a reload to resume it. */
export interface SavedRun {
  runId: RunId;
  /** The base model it was trained on (a Hub id or the dropped folder's name). */
  model: string;
  /** The dataset file it was trained on; a resume needs the same name and size. */
  dataset: { name: string; size: number };
  /** Step of the newest complete checkpoint; null when none was written yet. */
  step: number | null;
  /** Optimizer steps the run plans, as of its newest checkpoint; null when none was written yet. */
  totalSteps: number | null;
  /** ISO time the run started. */
  createdAt: string;
}

/** One optimizer step's metrics (names as Transformers logs them). */
export interface MetricPoint {
  step: number;
  epoch?: number;
  loss: number;
  grad_norm: number;
  learning_rate: number;
  tokens_per_sec: number;
  gpu_bytes: number;
  /** Trained tokens so far. */
  tokens?: number;
  /** Seconds trained, and left (estimated). */
  elapsed?: number;
  eta?: number;
}

export interface SelfTestCase {
  M: number;
  N: number;
  K: number;
  transB: boolean;
  /** max |gpu − reference| over the output. */
  maxAbsError: number;
  /** The bound that error was held to. */
  tolerance: number;
  passed: boolean;
}

/** Live and peak pool bytes sampled during the self-test: the first points of the GPU memory chart. */
export interface MemorySample {
  /** Milliseconds since the sampling began. */
  t: number;
  liveBytes: number;
  peakBytes: number;
}

export interface SelfTestResult {
  passed: boolean;
  cases: SelfTestCase[];
  maxAbsError: number;
  /** Throughput of a timed square matmul (2·M·N·K flops per product). */
  gflops: number;
  timedShape: [number, number, number];
  memory: MemorySample[];
  pool: PoolStats;
  ms: number;
}

export type ErrorCode =
  | 'webgpu-unavailable'
  | 'not-implemented'
  | 'bad-request'
  | 'no-model'
  | 'no-run'
  | 'busy'
  | 'bad-model'
  | 'bad-data'
  | 'device-lost'
  | 'internal';

/** An error as a plain value, so it survives structured cloning with its meaning intact. */
export interface ErrorValue {
  code: ErrorCode;
  message: string;
  /** What the user can do about it, when we know. */
  advice?: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ErrorValue };

// ---- commands (page → worker) ------------------------------------------------------------------

export type WorkerCommand =
  /** Loads the model (and prepares the dataset when one is given) with the run's settings. */
  | { type: 'load'; id: RequestId; model: ModelSource; dataset?: DatasetSource; config?: TrainConfig }
  | { type: 'start'; id: RequestId; config: TrainConfig; dataset: DatasetSource }
  /** Stops after the current step with a checkpoint; `resume` continues from the latest checkpoint. */
  | { type: 'pause'; id: RequestId; runId: RunId }
  /**
   * Continues a paused run of this tab, or a saved run after a reload (`listRuns`): then the same model must be
   * loaded and `dataset` must be the file it was trained on.
   */
  | { type: 'resume'; id: RequestId; runId: RunId; dataset?: DatasetSource }
  | { type: 'stop'; id: RequestId; runId: RunId }
  /** `prompt`: the text both models continue; default: the prompt of the first example. */
  | { type: 'evaluate'; id: RequestId; runId: RunId; prompt?: string; maxNewTokens?: number }
  | { type: 'export'; id: RequestId; runId: RunId; what: ExportKind }
  | { type: 'selfTest'; id: RequestId }
  | { type: 'gpuInfo'; id: RequestId }
  /** Saved runs, answered by `runs`. */
  | { type: 'listRuns'; id: RequestId }
  /** Deletes a saved run's checkpoints; answered by `runs` with what is left. */
  | { type: 'deleteRun'; id: RequestId; runId: RunId };

export type CommandType = WorkerCommand['type'];
export type CommandOf<K extends CommandType> = Extract<WorkerCommand, { type: K }>;

// ---- events (worker → page) --------------------------------------------------------------------

export type WorkerEvent =
  /** Loading, tokenizing or training; `runId` is null outside a run. */
  | { type: 'progress'; runId: RunId | null; phase: string; done: number; total: number }
  | {
      type: 'started';
      id: RequestId;
      runId: RunId;
      totalSteps: number;
      /** The step it starts from (> 0 when resumed from a checkpoint). */
      step: number;
      resumedFrom: string | null;
      trainableLine: string;
    }
  | { type: 'metrics'; runId: RunId; point: MetricPoint }
  | { type: 'advice'; runId: RunId | null; message: string }
  | { type: 'checkpoint'; runId: RunId; step: number; bytes: number }
  | { type: 'error'; id: RequestId | null; runId: RunId | null; error: ErrorValue }
  /** `paused`: stopped with a checkpoint, resumable; `stopped`: final, the adapter so far is exportable. */
  | {
      type: 'done';
      runId: RunId;
      reason: 'finished' | 'stopped' | 'paused' | 'diverged';
      steps: number;
      message: string;
    }
  | {
      type: 'loaded';
      id: RequestId;
      model: ModelInfo;
      /** PEFT's print_trainable_parameters line for the settings sent with the load. */
      trainableLine: string;
      dataset: DatasetSummary | null;
    }
  | { type: 'evaluated'; id: RequestId; runId: RunId; result: Result<EvalResult> }
  | { type: 'exported'; id: RequestId; runId: RunId; what: ExportKind; files: ExportedFile[] }
  | { type: 'gpuInfo'; id: RequestId; result: Result<GpuReport> }
  | { type: 'selfTest'; id: RequestId; result: Result<SelfTestResult> }
  /** Saved runs, newest first. */
  | { type: 'runs'; id: RequestId; result: Result<SavedRun[]> };

export type EventType = WorkerEvent['type'];
export type EventOf<K extends EventType> = Extract<WorkerEvent, { type: K }>;

// ---- exhaustiveness ----------------------------------------------------------------------------

/** One handler per command kind: leaving one out (or adding a command without one) fails `tsc`. */
export type CommandHandlers = {
  [K in CommandType]: (cmd: CommandOf<K>) => void | Promise<void>;
};

/** One handler per event kind, for the page side. */
export type EventHandlers = {
  [K in EventType]: (ev: EventOf<K>) => void;
};

// Runtime lists built from mapped records, so they cannot drift from the unions above.
const COMMAND_KINDS: { [K in CommandType]: true } = {
  load: true,
  start: true,
  pause: true,
  resume: true,
  stop: true,
  evaluate: true,
  export: true,
  selfTest: true,
  gpuInfo: true,
  listRuns: true,
  deleteRun: true,
};
const EVENT_KINDS: { [K in EventType]: true } = {
  progress: true,
  started: true,
  metrics: true,
  advice: true,
  checkpoint: true,
  error: true,
  done: true,
  loaded: true,
  evaluated: true,
  exported: true,
  gpuInfo: true,
  selfTest: true,
  runs: true,
};

export const COMMAND_TYPES = Object.keys(COMMAND_KINDS) as CommandType[];
export const EVENT_TYPES = Object.keys(EVENT_KINDS) as EventType[];

function hasType(x: unknown): x is { type: string } {
  return typeof x === 'object' && x !== null && typeof (x as { type?: unknown }).type === 'string';
}

/** Shallow check of a message from the page: a known command kind with a numeric request id. */
export function isWorkerCommand(x: unknown): x is WorkerCommand {
  return hasType(x) && Object.hasOwn(COMMAND_KINDS, x.type) && typeof (x as { id?: unknown }).id === 'number';
}

/** Shallow check of a message from the worker: a known event kind. */
export function isWorkerEvent(x: unknown): x is WorkerEvent {
  return hasType(x) && Object.hasOwn(EVENT_KINDS, x.type);
}

/** Calls the handler for `cmd.type`. The one place where the union is narrowed to its member. */
export function dispatchCommand(handlers: CommandHandlers, cmd: WorkerCommand): void | Promise<void> {
  // NOTE: TypeScript cannot correlate `handlers[cmd.type]` with `cmd`; the mapped type guarantees it.
  const handler = handlers[cmd.type] as (c: WorkerCommand) => void | Promise<void>;
  return handler(cmd);
}

export function dispatchEvent(handlers: EventHandlers, ev: WorkerEvent): void {
  const handler = handlers[ev.type] as (e: WorkerEvent) => void;
  handler(ev);
}

/** Turns anything thrown into an ErrorValue, keeping `advice` from WebGpuUnavailableError. */
export function toErrorValue(e: unknown, code: ErrorCode = 'internal'): ErrorValue {
  if (e instanceof Error) {
    const advice = (e as Error & { advice?: unknown }).advice;
    const isUnavailable = e.name === 'WebGpuUnavailableError';
    return {
      code: isUnavailable ? 'webgpu-unavailable' : code,
      message: e.message,
      ...(typeof advice === 'string' ? { advice } : {}),
    };
  }
  return { code, message: String(e) };
}

/** The request id of a command, or null for anything that is not one (so a bad message can still be answered). */
export function requestIdOf(x: unknown): RequestId | null {
  const id = typeof x === 'object' && x !== null ? (x as { id?: unknown }).id : undefined;
  return typeof id === 'number' ? id : null;
}
