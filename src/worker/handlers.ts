// The worker's command handlers: it owns the GPU device, the loaded model, the prepared dataset and the current run.
import type { PreparedDataset } from '../data/index';
import { DataError, prepareDataset, TextTokenizer } from '../data/index';
import type { GpuContext } from '../gpu/context';
import { zipFolder } from '../lora/zip';
import { mergeModelFromSource } from '../lora/merge-model';
import type { LoadedModel, WeightsDtype } from '../model/load';
import { CheckpointError, loadModel } from '../model/load';
import { FileListSource } from '../model/sources/files';
import type { HubCache } from '../model/sources/hub';
import { openHubModel, parseHubId } from '../model/sources/hub';
import type { ModelSource as EngineSource } from '../model/sources/source';
import { readOptionalText } from '../model/sources/source';
import type { TrainerEvent } from '../train/events';
import type { SessionResult } from '../train/session';
import type { TrainResult } from '../train/trainer';
import { runTrainingSession } from '../train/session';
import type { CheckpointStorage } from '../train/storage';
import { MemoryStorage } from '../train/storage';
import { evaluateAdapter } from './preview';
import type {
  CommandHandlers,
  CommandOf,
  DatasetSource,
  ErrorCode,
  ErrorValue,
  ExportedFile,
  ModelSource,
  RunId,
  TrainConfig,
  WorkerEvent,
} from './protocol';
import { toErrorValue } from './protocol';
import { runMatmulSelfTest } from './selftest';
import {
  datasetSummary,
  metricPoint,
  modelInfo,
  safeName,
  targetsFor,
  trainableLineFor,
  trainingArgs,
} from './setup';

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
class StudioError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly advice?: string,
  ) {
    super(message);
    this.name = 'StudioError';
  }
}

function errorValue(e: unknown): ErrorValue {
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

interface Loaded {
  ctx: GpuContext;
  source: EngineSource;
  model: LoadedModel;
  tok: TextTokenizer | null;
  /** What goes into adapter_config.json's base_model_name_or_path. */
  baseModel: string;
}

interface Prepared {
  key: string;
  data: PreparedDataset;
}

type RunStatus = 'running' | 'paused' | 'ended';

interface Run {
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

const datasetKey = (files: readonly File[], config: TrainConfig) =>
  JSON.stringify([files.map((f) => [f.name, f.size, f.lastModified]), config.max_length, config.eval_split]);

/** Throttles progress events to a few per second (the last one always goes). */
function throttled(emit: Emit, runId: RunId | null, phase: string): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (done < total && now - last < 150) return;
    last = now;
    emit({ type: 'progress', runId, phase, done, total });
  };
}

/**
 * Handlers for every command. `acquire` makes the GPU context (browser or Node); it is called on the first command
 * that needs the GPU, and again after the device is lost.
 */
export function createHandlers(
  emit: Emit,
  acquire: () => Promise<GpuContext>,
  options: HandlerOptions = {},
): CommandHandlers {
  const openStorage = options.storage ?? defaultStorage;
  const hubCache = options.hubCache ?? defaultHubCache;
  const maxRetries = options.maxDeviceRetries ?? 3;
  let gpu: Promise<GpuContext> | null = null;
  let loaded: Loaded | null = null;
  let prepared: Prepared | null = null;
  let run: Run | null = null;
  /** Load and training use the device one at a time. */
  let busy: string | null = null;
  let runCounter = 0;

  const context = (): Promise<GpuContext> => {
    if (!gpu) {
      const pending = acquire();
      gpu = pending;
      pending.then(
        (ctx) =>
          void ctx.lost.then((info) => {
            if (gpu === pending) gpu = null;
            // During a run, the trainer reports the loss itself and the run moves to a new device.
            if (busy === 'training') return;
            emit({
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
          if (gpu === pending) gpu = null;
        },
      );
    }
    return gpu;
  };

  const fail = (id: number | null, runId: RunId | null, e: unknown) =>
    emit({ type: 'error', id, runId, error: errorValue(e) });

  const claim = (what: string) => {
    if (busy)
      throw new StudioError(
        'busy',
        `The engine is busy ${busy}.`,
        'Wait for it to finish, or pause the run.',
      );
    busy = what;
  };

  /** Opens the model's files: a dropped folder, or a Hub id (downloaded once into the cache). */
  async function openSource(m: ModelSource): Promise<{ source: EngineSource; baseModel: string }> {
    if (m.kind === 'files') {
      if (m.files.length === 0) throw new StudioError('bad-request', 'No model files were given.');
      const top = (m.files[0].webkitRelativePath || '').split('/')[0];
      const name = top || `${m.files.length} dropped files`;
      return { source: new FileListSource(m.files, name), baseModel: top || 'local-model' };
    }
    const id = parseHubId(m.repo.trim());
    if (!id)
      throw new StudioError(
        'bad-request',
        `"${m.repo}" is not a Hugging Face model id.`,
        'Write it as org/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct, or drop a model folder.',
      );
    const progress = throttled(emit, null, 'download');
    const source = await openHubModel(id.repo, {
      revision: m.revision ?? id.revision,
      cache: await hubCache(),
      onProgress: (p) => progress(p.loaded, p.total ?? p.loaded),
    });
    return { source, baseModel: id.repo };
  }

  /** Uploads the weights: the checkpoint's own dtype, f16 widened to bf16 where the adapter lacks shader-f16. */
  async function upload(ctx: GpuContext, source: EngineSource): Promise<LoadedModel> {
    const configText = await readOptionalText(source, 'config.json');
    if (!configText)
      throw new StudioError(
        'bad-model',
        `${source.name}: no config.json.`,
        'Drop the whole model folder (config.json, tokenizer.json, *.safetensors) or give a Hub id.',
      );
    const declared = (JSON.parse(configText) as { torch_dtype?: string; dtype?: string }).torch_dtype;
    const dtype: WeightsDtype =
      declared === 'bfloat16' ? 'bf16' : declared === 'float16' ? (ctx.hasF16 ? 'f16' : 'bf16') : 'f32';
    const progress = throttled(emit, null, 'upload weights');
    return loadModel(ctx, source, { weightsDtype: dtype, onProgress: (p) => progress(p.loaded, p.total) });
  }

  async function openTokenizer(source: EngineSource): Promise<TextTokenizer | null> {
    const tokenizerJson = await readOptionalText(source, 'tokenizer.json');
    if (!tokenizerJson) return null;
    return new TextTokenizer({
      tokenizerJson,
      tokenizerConfig: await readOptionalText(source, 'tokenizer_config.json'),
      chatTemplate: await readOptionalText(source, 'chat_template.jinja'),
    });
  }

  async function prepare(l: Loaded, dataset: DatasetSource, config: TrainConfig): Promise<Prepared> {
    const key = datasetKey(dataset.files, config);
    if (prepared?.key === key) return prepared;
    const file = dataset.files[0];
    if (!file) throw new StudioError('bad-request', 'No dataset file was given.', 'Add a dataset first.');
    const progress = throttled(emit, null, 'tokenize');
    const data = await prepareDataset(file, file.name, l.tok, {
      maxLen: config.max_length,
      vocabSize: l.model.spec.vocabSize,
      evalSplit: config.eval_split,
      seed: 42,
      onProgress: (p) => progress(p.bytesRead, p.totalBytes ?? p.bytesRead),
    });
    if (data.train.length === 0)
      throw new StudioError(
        'bad-data',
        `${file.name}: no usable training rows.`,
        'Lower the eval split or add rows.',
      );
    prepared = { key, data };
    return prepared;
  }

  function argsFor(l: Loaded, r: Pick<Run, 'runId' | 'config'>, resume: boolean) {
    const { target, dropped } = targetsFor(l.model, r.config.target_modules);
    const args = trainingArgs(r.config, {
      model: l.baseModel,
      data: prepared?.data.report.file ?? 'dataset',
      out: `runs/${r.runId}`,
      target,
      resume,
    });
    return { args, dropped };
  }

  /** Turns the trainer's events into protocol events of this run. */
  function forward(r: Run, e: TrainerEvent): void {
    switch (e.type) {
      case 'start':
        break;
      case 'step':
        r.lastStep = e.step;
        emit({ type: 'metrics', runId: r.runId, point: metricPoint(e) });
        emit({ type: 'progress', runId: r.runId, phase: 'train', done: e.step, total: 0 });
        break;
      case 'eval':
        emit({
          type: 'advice',
          runId: r.runId,
          message: `Eval at step ${e.step}: loss ${e.eval_loss.toFixed(4)}, perplexity ${e.eval_ppl.toFixed(2)}.`,
        });
        break;
      case 'skip':
        emit({ type: 'advice', runId: r.runId, message: `Step ${e.step} skipped: ${e.reason}.` });
        break;
      case 'advice':
        emit({ type: 'advice', runId: r.runId, message: `${e.message} ${e.remedy}` });
        break;
      case 'checkpoint':
        void checkpointBytes(r.storage, e.dir).then((bytes) =>
          emit({ type: 'checkpoint', runId: r.runId, step: e.step, bytes }),
        );
        break;
      case 'end':
        break;
      default:
        return e satisfies never;
    }
  }

  /**
   * Trains until the run ends, pauses or stops. A lost device is replaced: a new one is acquired, the model uploaded
   * again, and training resumes from the latest checkpoint.
   */
  async function train(id: number, r: Run, resume: boolean): Promise<void> {
    let l = loaded;
    if (!l) throw new StudioError('no-model', 'No model is loaded.', 'Load a model first.');
    const data = prepared?.key === r.dataKey ? prepared.data : null;
    if (!data) throw new StudioError('bad-request', 'The dataset changed since this run started.');
    r.status = 'running';
    let retries = 0;
    let first = true;
    for (;;) {
      const { args, dropped } = argsFor(l, r, resume);
      if (first && dropped.length && !resume)
        emit({
          type: 'advice',
          runId: r.runId,
          message: `This ${l.model.spec.arch} model has no ${dropped.join(', ')}: ${args.target ? `training ${args.target}` : 'using its default target modules'}.`,
        });
      const trainableLine = trainableLineFor(l.model, l.baseModel, args);
      r.abort = new AbortController();
      r.stopAs = null;
      let started = false;
      let res: TrainResult;
      try {
        const out = await runTrainingSession({
          ctx: l.ctx,
          model: l.model,
          baseModel: l.baseModel,
          data,
          args,
          padId: l.tok?.eosId ?? 0,
          storage: r.storage,
          signal: r.abort.signal,
          onEvent: (e) => {
            if (e.type === 'start' && !started) {
              started = true;
              if (first)
                emit({
                  type: 'started',
                  id,
                  runId: r.runId,
                  totalSteps: e.totalSteps,
                  step: e.step,
                  resumedFrom: e.resumedFrom,
                  trainableLine,
                });
              emit({ type: 'progress', runId: r.runId, phase: 'train', done: e.step, total: e.totalSteps });
            }
            forward(r, e);
          },
        });
        res = out.result;
        if (res.status !== 'device_lost') r.session = out;
      } catch (e) {
        // A readback can fail before device.lost settles; the trainer then rethrows instead of reporting the loss.
        if (!(await isLost(l.ctx))) throw e;
        res = {
          status: 'device_lost',
          step: r.lastStep,
          message: 'the GPU device was lost',
          checkpoint: null,
        };
      }
      first = false;
      if (res.status === 'device_lost' && retries < maxRetries) {
        retries++;
        emit({
          type: 'advice',
          runId: r.runId,
          message: `The GPU device was lost at step ${res.step}; resuming on a new device (try ${retries} of ${maxRetries}).`,
        });
        l.model.dispose();
        const ctx = await context();
        const model = await upload(ctx, l.source);
        l = { ...l, ctx, model };
        loaded = l;
        resume = true;
        continue;
      }
      r.abort = null;
      if (res.status === 'device_lost') {
        r.status = 'paused';
        fail(
          id,
          null,
          new StudioError(
            'device-lost',
            `The GPU device was lost ${maxRetries + 1} times; training paused at step ${res.step}.`,
            'Close other GPU-heavy tabs, then press Resume: it continues from the latest checkpoint.',
          ),
        );
        emit({ type: 'done', runId: r.runId, reason: 'paused', steps: res.step, message: res.message });
        return;
      }
      const reason =
        res.status === 'completed'
          ? 'finished'
          : res.status === 'diverged'
            ? 'diverged'
            : r.stopAs === 'pause'
              ? 'paused'
              : 'stopped';
      r.status = reason === 'paused' ? 'paused' : 'ended';
      emit({ type: 'done', runId: r.runId, reason, steps: res.step, message: res.message });
      return;
    }
  }

  async function withRun(
    cmd: { id: number; runId: RunId },
    allowed: readonly RunStatus[],
    f: (r: Run) => Promise<void> | void,
  ): Promise<void> {
    try {
      if (!run || run.runId !== cmd.runId)
        throw new StudioError('no-run', `There is no run ${cmd.runId} in this tab.`, 'Start a new run.');
      if (!allowed.includes(run.status))
        throw new StudioError('bad-request', `The run is ${run.status}: this cannot be done now.`);
      await f(run);
    } catch (e) {
      fail(cmd.id, cmd.runId, e);
    }
  }

  async function startTraining(id: number, r: Run, resume: boolean): Promise<void> {
    claim('training');
    try {
      await train(id, r, resume);
    } catch (e) {
      if (r.status === 'running') r.status = 'ended';
      fail(id, r.runId, e);
    } finally {
      busy = null;
    }
  }

  return {
    async gpuInfo(cmd: CommandOf<'gpuInfo'>) {
      try {
        const ctx = await context();
        emit({ type: 'gpuInfo', id: cmd.id, result: { ok: true, value: ctx.report } });
      } catch (e) {
        emit({ type: 'gpuInfo', id: cmd.id, result: { ok: false, error: toErrorValue(e) } });
      }
    },
    async selfTest(cmd) {
      try {
        const ctx = await context();
        const value = await runMatmulSelfTest(ctx);
        emit({ type: 'selfTest', id: cmd.id, result: { ok: true, value } });
      } catch (e) {
        emit({ type: 'selfTest', id: cmd.id, result: { ok: false, error: toErrorValue(e) } });
      }
    },
    async load(cmd) {
      try {
        claim('loading a model');
      } catch (e) {
        fail(cmd.id, null, e);
        return;
      }
      try {
        const ctx = await context();
        const { source, baseModel } = await openSource(cmd.model);
        const tok = await openTokenizer(source);
        const previous = loaded;
        loaded = null;
        prepared = null;
        previous?.model.dispose();
        const model = await upload(ctx, source);
        const l: Loaded = { ctx, source, model, tok, baseModel };
        loaded = l;
        if (!tok)
          emit({
            type: 'advice',
            runId: null,
            message: `${source.name} has no tokenizer.json: only pre-tokenized datasets (input_ids) work with it.`,
          });
        let trainableLine = '';
        let dataset = null;
        if (cmd.config) {
          const { args } = argsFor(l, { runId: 'preview', config: cmd.config }, false);
          trainableLine = trainableLineFor(model, baseModel, args);
          if (cmd.dataset?.files.length)
            dataset = datasetSummary((await prepare(l, cmd.dataset, cmd.config)).data, cmd.config.max_length);
        }
        emit({ type: 'loaded', id: cmd.id, model: modelInfo(model), trainableLine, dataset });
      } catch (e) {
        fail(cmd.id, null, e);
      } finally {
        busy = null;
      }
    },
    async start(cmd) {
      try {
        if (!loaded) throw new StudioError('no-model', 'No model is loaded.', 'Load a model first.');
        if (busy) throw new StudioError('busy', `The engine is busy ${busy}.`, 'Wait for it to finish.');
        if (run?.status === 'running' || run?.status === 'paused')
          throw new StudioError('busy', 'A run is in progress.', 'Stop it before starting another.');
        const p = await prepare(loaded, cmd.dataset, cmd.config);
        emit({
          type: 'loaded',
          id: cmd.id,
          model: modelInfo(loaded.model),
          trainableLine: trainableLineFor(
            loaded.model,
            loaded.baseModel,
            argsFor(loaded, { runId: 'x', config: cmd.config }, false).args,
          ),
          dataset: datasetSummary(p.data, cmd.config.max_length),
        });
        const runId = `${new Date().toISOString().replace(/[:.]/g, '-')}-${++runCounter}`;
        const storage = await openStorage(`runs/${runId}`);
        run = {
          runId,
          config: cmd.config,
          dataKey: p.key,
          storage,
          status: 'running',
          abort: null,
          stopAs: null,
          session: null,
          lastStep: 0,
        };
        await startTraining(cmd.id, run, false);
      } catch (e) {
        fail(cmd.id, null, e);
      }
    },
    pause: (cmd) =>
      withRun(cmd, ['running'], (r) => {
        r.stopAs = 'pause';
        r.abort?.abort();
      }),
    resume: (cmd) => withRun(cmd, ['paused'], (r) => startTraining(cmd.id, r, true)),
    stop: (cmd) =>
      withRun(cmd, ['running', 'paused'], (r) => {
        if (r.status === 'paused') {
          r.status = 'ended';
          emit({
            type: 'done',
            runId: r.runId,
            reason: 'stopped',
            steps: r.session?.result.step ?? 0,
            message: 'stopped while paused',
          });
          return;
        }
        r.stopAs = 'stop';
        r.abort?.abort();
      }),
    evaluate: (cmd) =>
      withRun(cmd, ['paused', 'ended'], async (r) => {
        const l = loaded;
        const session = r.session;
        if (!l || !session || !prepared)
          throw new StudioError('no-run', 'This run has no adapter yet.', 'Train at least one step first.');
        claim('evaluating');
        try {
          const value = await evaluateAdapter({
            ctx: l.ctx,
            model: l.model,
            adapter: session.adapter,
            tok: l.tok,
            evalSet: prepared.data.eval,
            trainSet: prepared.data.train,
            batchSize: Math.min(r.config.per_device_train_batch_size, 8),
            padId: l.tok?.eosId ?? 0,
            prompt: cmd.prompt,
            maxNewTokens: cmd.maxNewTokens ?? 24,
          });
          emit({ type: 'evaluated', id: cmd.id, runId: r.runId, result: { ok: true, value } });
        } catch (e) {
          emit({
            type: 'evaluated',
            id: cmd.id,
            runId: r.runId,
            result: { ok: false, error: errorValue(e) },
          });
        } finally {
          busy = null;
        }
      }),
    export: (cmd) =>
      withRun(cmd, ['paused', 'ended'], async (r) => {
        const session = r.session;
        if (!session) throw new StudioError('no-run', 'This run has no adapter yet.');
        const folder = `${safeName(loaded?.baseModel.split('/').pop() ?? 'model')}-lora`;
        let files: ExportedFile[];
        if (cmd.what === 'adapter') {
          const zip = zipFolder(folder, session.files);
          files = [
            { name: `${folder}.zip`, data: owned(zip) },
            ...session.files.map((f) => ({ name: f.name, data: copied(f.data) })),
          ];
        } else {
          if (!loaded) throw new StudioError('no-model', 'The base model is not loaded any more.');
          emit({ type: 'progress', runId: r.runId, phase: 'merge', done: 0, total: 1 });
          const merged = await mergeModelFromSource(loaded.source, session.adapter);
          emit({ type: 'progress', runId: r.runId, phase: 'merge', done: 1, total: 1 });
          files = merged.map((f) => ({ name: f.name, data: owned(f.data) }));
        }
        emit(
          { type: 'exported', id: cmd.id, runId: r.runId, what: cmd.what, files },
          files.map((f) => f.data),
        );
      }),
  };
}

/** An ArrayBuffer holding exactly these bytes, safe to transfer (a view of a bigger or shared buffer is copied). */
function owned(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer)
    return b.buffer;
  return b.slice().buffer as ArrayBuffer;
}

/** Whether the context's device is lost (or is lost within a moment). */
async function isLost(ctx: GpuContext, waitMs = 1000): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)));
  try {
    return await Promise.race([ctx.lost.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A copy: the run keeps its own files for the next export. */
function copied(b: Uint8Array): ArrayBuffer {
  return b.slice().buffer as ArrayBuffer;
}

async function checkpointBytes(storage: CheckpointStorage, dir: string): Promise<number> {
  let n = 0;
  try {
    for (const f of await storage.list(dir)) n += (await storage.read(`${dir}/${f}`))?.length ?? 0;
  } catch {
    // The size is informative only.
  }
  return n;
}
