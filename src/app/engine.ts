// The page's side of the worker: sends commands with fresh ids and turns every event into a store action.
import type { EventHandlers, ModelSource, WorkerCommand, WorkerEvent } from '../worker/protocol';
import { dispatchEvent, isWorkerEvent } from '../worker/protocol';
import type { StudioStore } from './store';

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
  loadModel(source: ModelSource): void;
  startRun(): void;
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
    loaded: (ev) => actions().modelLoaded(ev.model),
    progress: (ev) => actions().runProgress(ev.runId, ev.phase, ev.done, ev.total),
    metrics: (ev) => actions().metricsReceived(ev.runId, ev.point, seconds()),
    advice: (ev) => actions().adviceReceived(ev.message),
    checkpoint: (ev) => actions().adviceReceived(`Checkpoint saved at step ${ev.step}.`),
    done: (ev) => actions().runDone(ev.runId),
    error: (ev) => actions().engineFailed(ev.error),
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
      store.getState().modelLoadRequested();
      send({ type: 'load', model });
    },
    startRun() {
      const s = store.getState();
      s.runRequested();
      const { modelRepo: _repo, ...config } = s.settings;
      send({ type: 'start', config, dataset: { files: s.datasetFiles } });
    },
    dispose() {
      worker.terminate();
    },
  };
}

/** The real thing: a module worker that owns the GPU device. */
export function createWorkerEngine(store: StudioStore): Engine {
  const worker = new Worker(new URL('../worker/worker.ts', import.meta.url), {
    type: 'module',
    name: 'lora-studio-gpu',
  });
  return connectEngine(store, worker);
}
