// The page's side of the worker: sends commands with fresh ids and turns every event into a store action.
import type {
  EventHandlers,
  ExportKind,
  ModelSource,
  RunId,
  TrainConfig,
  WorkerCommand,
  WorkerEvent,
} from '../worker/protocol';
import { dispatchEvent, isWorkerEvent } from '../worker/protocol';
import type { StudioStore } from './store';
import type { TrainingSettings } from './store/settings';

/** `Omit` that keeps a union a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type CommandInput = DistributiveOmit<WorkerCommand, 'id'>;

/** What a Worker (or a test double) must offer. */
export interface WorkerLike {
  postMessage(message: WorkerCommand): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent<unknown>) => void): void;
  addEventListener(type: 'error', listener: (ev: Event) => void): void;
  terminate(): void;
}

/** The user's intents that involve the worker; components call these, never the worker. */
export interface Engine {
  probeGpu(): void;
  runSelfTest(): void;
  /** Loads the model, and prepares the dropped dataset with the current settings. */
  loadModel(source: ModelSource): void;
  startRun(): void;
  pauseRun(): void;
  resumeRun(): void;
  stopRun(): void;
  /** Eval loss of base and tuned model, and a greedy continuation of `prompt` (default: a dataset prompt). */
  evaluate(prompt?: string): void;
  exportFiles(what: ExportKind): void;
  /** Asks for the runs saved in this browser (on startup, and after a run starts or ends). */
  listRuns(): void;
  /** Resumes a saved run (after a reload) with the loaded model and the dropped dataset. */
  resumeSavedRun(runId: RunId): void;
  deleteRun(runId: RunId): void;
  dispose(): void;
}

export function eventHandlers(store: StudioStore, send: (c: CommandInput) => void): EventHandlers {
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  const actions = () => store.getState();
  return {
    gpuInfo: (ev) => {
      actions().gpuInfoReceived(ev.result);
      // The self-test follows the adapter report at once, so the page shows a verdict without a click.
      if (ev.result.ok) {
        actions().selfTestStarted();
        send({ type: 'selfTest' });
      }
    },
    selfTest: (ev) => {
      actions().selfTestFinished(ev.result);
      if (ev.result.ok)
        actions().memorySampled(ev.result.value.memory, seconds() - ev.result.value.ms / 1000);
    },
    loaded: (ev) => actions().modelLoaded(ev.model, ev.trainableLine, ev.dataset),
    started: (ev) => {
      actions().runStarted(ev.runId, ev.totalSteps, ev.step, ev.resumedFrom, ev.trainableLine);
      send({ type: 'listRuns' });
    },
    progress: (ev) => actions().runProgress(ev.runId, ev.phase, ev.done, ev.total),
    metrics: (ev) => {
      actions().metricsReceived(ev.runId, ev.point, seconds());
      actions().runStepDone(ev.runId, ev.point.step);
    },
    advice: (ev) => actions().adviceReceived(ev.message),
    checkpoint: (ev) => actions().checkpointSaved(ev.runId, ev.step, ev.bytes),
    done: (ev) => {
      actions().runDone(ev.runId, ev.reason, ev.steps, ev.message);
      // Its newest checkpoint changed: the saved runs list shows the step a reload would resume from.
      send({ type: 'listRuns' });
      // The adapter files are small and already in the worker: fetch them so the download links are ready.
      if (actions().engine.runId === ev.runId) {
        actions().exportRequested('adapter');
        send({ type: 'export', runId: ev.runId, what: 'adapter' });
      }
    },
    evaluated: (ev) => actions().evaluationFinished(ev.runId, ev.result),
    exported: (ev) => actions().exportReceived(ev.runId, ev.what, ev.files),
    error: (ev) => actions().engineFailed(ev.error, ev.runId),
    runs: (ev) => actions().savedRunsReceived(ev.result),
  };
}

export function connectEngine(store: StudioStore, worker: WorkerLike): Engine {
  let nextId = 1;
  const send = (c: CommandInput) => {
    const cmd: WorkerCommand = { ...c, id: nextId++ };
    worker.postMessage(cmd);
  };
  const handlers = eventHandlers(store, send);
  worker.addEventListener('message', (ev) => {
    const msg: unknown = ev.data;
    if (isWorkerEvent(msg)) dispatchEvent(handlers, msg satisfies WorkerEvent);
  });
  worker.addEventListener('error', (ev) => {
    const message = 'message' in ev ? ev.message : undefined;
    const detail = typeof message === 'string' && message ? `: ${message}` : '';
    store.getState().gpuInfoReceived({
      ok: false,
      error: {
        code: 'internal',
        message: `The GPU worker failed to start${detail}.`,
        advice: 'Reload the page. If it happens again, open the browser console for details.',
      },
    });
  });
  return {
    probeGpu() {
      store.getState().gpuProbeStarted();
      send({ type: 'gpuInfo' });
    },
    runSelfTest() {
      store.getState().selfTestStarted();
      send({ type: 'selfTest' });
    },
    loadModel(model) {
      const s = store.getState();
      s.modelLoadRequested();
      const dataset = s.datasetFiles.length ? { files: s.datasetFiles } : undefined;
      send({ type: 'load', model, config: trainConfig(s.settings), ...(dataset ? { dataset } : {}) });
    },
    startRun() {
      const s = store.getState();
      s.runRequested();
      send({ type: 'start', config: trainConfig(s.settings), dataset: { files: s.datasetFiles } });
    },
    pauseRun() {
      const { engine, runPauseRequested } = store.getState();
      if (!engine.runId) return;
      runPauseRequested();
      send({ type: 'pause', runId: engine.runId });
    },
    resumeRun() {
      const { engine, runResumeRequested } = store.getState();
      if (!engine.runId) return;
      runResumeRequested();
      send({ type: 'resume', runId: engine.runId });
    },
    stopRun() {
      const { engine, runStopRequested } = store.getState();
      if (!engine.runId) return;
      runStopRequested();
      send({ type: 'stop', runId: engine.runId });
    },
    evaluate(prompt) {
      const { engine, evaluationRequested } = store.getState();
      if (!engine.runId) return;
      evaluationRequested();
      send({ type: 'evaluate', runId: engine.runId, ...(prompt?.trim() ? { prompt } : {}) });
    },
    exportFiles(what) {
      const { engine, exportRequested } = store.getState();
      if (!engine.runId) return;
      exportRequested(what);
      send({ type: 'export', runId: engine.runId, what });
    },
    listRuns() {
      send({ type: 'listRuns' });
    },
    resumeSavedRun(runId) {
      const s = store.getState();
      // Like a start: the store shows 'starting' until the worker answers `started` (or an error saying what to load).
      s.runRequested();
      send({ type: 'resume', runId, dataset: { files: s.datasetFiles } });
    },
    deleteRun(runId) {
      send({ type: 'deleteRun', runId });
    },
    dispose() {
      worker.terminate();
    },
  };
}

/** The worker's part of the settings (the Hub id travels in the load command instead). */
export function trainConfig(settings: TrainingSettings): TrainConfig {
  const { modelRepo: _repo, ...config } = settings;
  return { ...config, target_modules: [...config.target_modules] };
}

/** The real thing: a module worker that owns the GPU device. */
export function createWorkerEngine(store: StudioStore): Engine {
  const worker = new Worker(new URL('../worker/worker.ts', import.meta.url), {
    type: 'module',
    name: 'lora-studio-gpu',
  });
  return connectEngine(store, worker);
}
