// The worker's state (GPU context, loaded model, prepared dataset, current run) and the helpers every command shares.
import type { PreparedDataset } from '../data/index';
import { DataError } from '../data/index';
import type { TextTokenizer } from '../data/index';
import type { GpuContext } from '../gpu/context';
import type { LoadedModel } from '../model/load';
import { CheckpointError } from '../model/load';
import type { HubCache } from '../model/sources/hub';
import type { ModelSource as EngineSource } from '../model/sources/source';
import type { SessionResult } from '../train/session';
import type { CheckpointStorage } from '../train/storage';
import { MemoryStorage } from '../train/storage';
import type { ErrorCode, ErrorValue, RunId, TrainConfig, WorkerEvent } from './protocol';
import { toErrorValue } from './protocol';
import { runDir } from './saved-runs';
import { targetsFor, trainingArgs } from './setup';

/** Sends an event; `transfer` moves ArrayBuffers to the page instead of copying them. */
export type Emit = (ev: WorkerEvent, transfer?: Transferable[]) => void;

export interface HandlerOptions {
  /** Checkpoint storage rooted at a run's folder (default: OPFS where the browser has it, else memory). */
  storage?: (dir: string) => Promise<CheckpointStorage>;
  /** Where Hub downloads are kept (default: Cache Storage). */
  hubCache?: () => Promise<HubCache>;
  /** New devices tried after a lost one, per run, before giving up (default 3). */
  maxDeviceRetries?: number;
}

async function defaultStorage(dir: string): Promise<CheckpointStorage> {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: unknown } } }).navigator?.storage;
  if (typeof storage?.getDirectory !== 'function') return new MemoryStorage();
  const { OpfsStorage } = await import('../train/storage-opfs');
  return OpfsStorage.open(dir);
}

async function defaultHubCache(): Promise<HubCache> {
  const { BrowserHubCache } = await import('../model/sources/hub-cache-browser');
  return new BrowserHubCache();
}

/** A user-facing failure with its code and what to do. */
export class StudioError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly advice?: string,
  ) {
    super(message);
    this.name = 'StudioError';
  }
}

export function errorValue(e: unknown): ErrorValue {
  if (e instanceof StudioError)
    return { code: e.code, message: e.message, ...(e.advice ? { advice: e.advice } : {}) };
  if (e instanceof DataError)
    return { code: 'bad-data', message: e.message, advice: 'Check the dataset file, then load it again.' };
  if (e instanceof CheckpointError || (e instanceof Error && e.name === 'MissingFileError'))
    return {
      code: 'bad-model',
      message: e.message,
      advice: 'A model folder needs config.json, tokenizer.json and its *.safetensors files.',
    };
  return toErrorValue(e);
}

export interface Loaded {
  ctx: GpuContext;
  source: EngineSource;
  model: LoadedModel;
  tok: TextTokenizer | null;
  /** What goes into adapter_config.json's base_model_name_or_path. */
  baseModel: string;
}

export interface Prepared {
  key: string;
  data: PreparedDataset;
}

export type RunStatus = 'running' | 'paused' | 'ended';

export interface Run {
  runId: RunId;
  config: TrainConfig;
  dataKey: string;
  storage: CheckpointStorage;
  status: RunStatus;
  abort: AbortController | null;
  /** What the current abort means: pause (resumable) or stop (final). */
  stopAs: 'pause' | 'stop' | null;
  /** The adapter as of the last session's end. */
  session: SessionResult | null;
  /** The last step with metrics. */
  lastStep: number;
}

/** Two loads of the same files with the same length and split share one tokenization. */
export const datasetKey = (files: readonly File[], config: TrainConfig) =>
  JSON.stringify([files.map((f) => [f.name, f.size, f.lastModified]), config.max_length, config.eval_split]);

/** Throttles progress events to a few per second (the last one always goes). */
export function throttled(
  emit: Emit,
  runId: RunId | null,
  phase: string,
): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (done < total && now - last < 150) return;
    last = now;
    emit({ type: 'progress', runId, phase, done, total });
  };
}

/**
 * Everything the command families share. `acquire` makes the GPU context (browser or Node); it is called on the first
 * command that needs the GPU, and again after the device is lost.
 */
export class WorkerSession {
  readonly openStorage: (dir: string) => Promise<CheckpointStorage>;
  readonly hubCache: () => Promise<HubCache>;
  readonly maxRetries: number;
  loaded: Loaded | null = null;
  prepared: Prepared | null = null;
  run: Run | null = null;
  /** Load and training use the device one at a time. */
  busy: string | null = null;
  runCounter = 0;
  private gpu: Promise<GpuContext> | null = null;

  constructor(
    readonly emit: Emit,
    private readonly acquire: () => Promise<GpuContext>,
    options: HandlerOptions = {},
  ) {
    this.openStorage = options.storage ?? defaultStorage;
    this.hubCache = options.hubCache ?? defaultHubCache;
    this.maxRetries = options.maxDeviceRetries ?? 3;
  }

  context(): Promise<GpuContext> {
    if (!this.gpu) {
      const pending = this.acquire();
      this.gpu = pending;
      pending.then(
        (ctx) =>
          void ctx.lost.then((info) => {
            if (this.gpu === pending) this.gpu = null;
            // During a run, the trainer reports the loss itself and the run moves to a new device.
            if (this.busy === 'training') return;
            this.emit({
              type: 'error',
              id: null,
              runId: null,
              error: {
                code: 'device-lost',
                message: `The GPU device was lost (${info.reason}): ${info.message}`,
                advice: 'Load the model again: a new device is requested on the next command.',
              },
            });
          }),
        // A failed acquisition is retried on the next command (the user may have enabled WebGPU meanwhile).
        () => {
          if (this.gpu === pending) this.gpu = null;
        },
      );
    }
    return this.gpu;
  }

  fail(id: number | null, runId: RunId | null, e: unknown): void {
    this.emit({ type: 'error', id, runId, error: errorValue(e) });
  }

  /** Runs `f` on the current run when it is `cmd.runId` in one of the `allowed` states; any failure is answered. */
  async withRun(
    cmd: { id: number; runId: RunId },
    allowed: readonly RunStatus[],
    f: (r: Run) => Promise<void> | void,
  ): Promise<void> {
    const run = this.run;
    try {
      if (!run || run.runId !== cmd.runId)
        throw new StudioError('no-run', `There is no run ${cmd.runId} in this tab.`, 'Start a new run.');
      if (!allowed.includes(run.status))
        throw new StudioError('bad-request', `The run is ${run.status}: this cannot be done now.`);
      await f(run);
    } catch (e) {
      this.fail(cmd.id, cmd.runId, e);
    }
  }

  /** Takes the device for `what`; the caller sets `busy = null` when done. */
  claim(what: string): void {
    if (this.busy)
      throw new StudioError(
        'busy',
        `The engine is busy ${this.busy}.`,
        'Wait for it to finish, or pause the run.',
      );
    this.busy = what;
  }
}

/** TrainingArgs of a run with this model, and the chosen target modules the model lacks. */
export function argsFor(s: WorkerSession, l: Loaded, r: Pick<Run, 'runId' | 'config'>, resume: boolean) {
  const { target, dropped } = targetsFor(l.model, r.config.target_modules);
  const args = trainingArgs(r.config, {
    model: l.baseModel,
    data: s.prepared?.data.report.file ?? 'dataset',
    out: runDir(r.runId),
    target,
    resume,
  });
  return { args, dropped };
}
