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
}

/** One optimizer step's metrics (names as Transformers logs them). */
export interface MetricPoint {
  step: number;
  loss: number;
  grad_norm: number;
  learning_rate: number;
  tokens_per_sec: number;
  gpu_bytes: number;
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
  'webgpu-unavailable' | 'not-implemented' | 'bad-request' | 'no-run' | 'device-lost' | 'internal';

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
  | { type: 'load'; id: RequestId; model: ModelSource }
  | { type: 'start'; id: RequestId; config: TrainConfig; dataset: DatasetSource }
  | { type: 'pause'; id: RequestId; runId: RunId }
  | { type: 'resume'; id: RequestId; runId: RunId }
  | { type: 'stop'; id: RequestId; runId: RunId }
  | { type: 'evaluate'; id: RequestId; runId: RunId }
  | { type: 'export'; id: RequestId; runId: RunId }
  | { type: 'selfTest'; id: RequestId }
  | { type: 'gpuInfo'; id: RequestId };

export type CommandType = WorkerCommand['type'];
export type CommandOf<K extends CommandType> = Extract<WorkerCommand, { type: K }>;

// ---- events (worker → page) --------------------------------------------------------------------

export type WorkerEvent =
  | { type: 'progress'; runId: RunId; phase: string; done: number; total: number }
  | { type: 'metrics'; runId: RunId; point: MetricPoint }
  | { type: 'advice'; runId: RunId | null; message: string }
  | { type: 'checkpoint'; runId: RunId; step: number; bytes: number }
  | { type: 'error'; id: RequestId | null; runId: RunId | null; error: ErrorValue }
  | { type: 'done'; runId: RunId; reason: 'finished' | 'stopped'; steps: number }
  | { type: 'loaded'; id: RequestId; model: ModelInfo }
  | { type: 'gpuInfo'; id: RequestId; result: Result<GpuReport> }
  | { type: 'selfTest'; id: RequestId; result: Result<SelfTestResult> };

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
};
const EVENT_KINDS: { [K in EventType]: true } = {
  progress: true,
  metrics: true,
  advice: true,
  checkpoint: true,
  error: true,
  done: true,
  loaded: true,
  gpuInfo: true,
  selfTest: true,
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
