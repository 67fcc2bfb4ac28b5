// The studio store's named actions, per-field persistence, the worker protocol's runtime helpers, and the
// page/worker wiring with test doubles (no GPU, no DOM).
import { describe, expect, it, vi } from 'vitest';
import type { StateStorage } from 'zustand/middleware';
import { connectEngine, trainConfig } from '../../src/app/engine';
import type { WorkerLike } from '../../src/app/engine';
import { STORAGE_KEY, createStudioStore, resumeBlocker, startBlocker } from '../../src/app/store';
import { DEFAULT_SETTINGS, restoreSettings } from '../../src/app/store/settings';
import { WebGpuUnavailableError } from '../../src/gpu/acquire';
import type { GpuReport } from '../../src/gpu/acquire';
import type { GpuContext } from '../../src/gpu/context';
import { createHandlers } from '../../src/worker/handlers';
import type {
  CommandHandlers,
  MetricPoint,
  SavedRun,
  SelfTestResult,
  WorkerCommand,
  WorkerEvent,
} from '../../src/worker/protocol';
import {
  COMMAND_TYPES,
  EVENT_TYPES,
  dispatchCommand,
  isWorkerCommand,
  isWorkerEvent,
  toErrorValue,
} from '../../src/worker/protocol';

function memoryStorage(): StateStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

const REPORT: GpuReport = {
  runtime: 'browser',
  adapter: {
    vendor: 'google',
    architecture: 'swiftshader',
    device: '',
    description: '',
    isFallbackAdapter: true,
  },
  limits: { maxBufferSize: 1 << 30 },
  features: ['subgroups'],
  adapterFeatures: ['subgroups'],
};

const SELF_TEST: SelfTestResult = {
  passed: true,
  cases: [{ M: 7, N: 13, K: 5, transB: false, maxAbsError: 1e-7, tolerance: 1e-5, passed: true }],
  maxAbsError: 1e-7,
  gflops: 1,
  timedShape: [128, 128, 128],
  memory: [
    { t: 0, liveBytes: 0, peakBytes: 0 },
    { t: 500, liveBytes: 1024, peakBytes: 1024 },
  ],
  pool: { liveBytes: 0, peakBytes: 1024, cachedBytes: 1024, liveBuffers: 0 },
  ms: 1000,
};

const point = (step: number): MetricPoint => ({
  step,
  loss: 2 / step,
  grad_norm: 1,
  learning_rate: 2e-4,
  tokens_per_sec: 100,
  gpu_bytes: 4096,
});

describe('training settings', () => {
  it('clamps numbers, toggles target modules and resets, keeping the model id', () => {
    const store = createStudioStore(memoryStorage());
    const s = () => store.getState();
    s().settingChanged('r', 1000);
    expect(s().settings.r).toBe(256);
    s().settingChanged('r', 7.6);
    expect(s().settings.r).toBe(8);
    s().settingChanged('lora_dropout', 0.125);
    expect(s().settings.lora_dropout).toBe(0.125);
    s().settingChanged('learning_rate', Number.NaN);
    expect(s().settings.learning_rate).toBe(DEFAULT_SETTINGS.learning_rate);
    s().targetModuleToggled('o_proj', true);
    s().targetModuleToggled('q_proj', false);
    expect(s().settings.target_modules).toEqual(['v_proj', 'o_proj']);
    s().settingChanged('modelRepo', 'org/model');
    s().settingsReset();
    expect(s().settings).toEqual({ ...DEFAULT_SETTINGS, modelRepo: 'org/model' });
  });

  it('persists the settings per field, and only them, and restores them in a new store', () => {
    const storage = memoryStorage();
    const a = createStudioStore(storage);
    a.getState().settingChanged('r', 32);
    a.getState().settingChanged('lr_scheduler_type', 'linear');
    a.getState().datasetFilesDropped([new File(['x'], 'd.jsonl')]);
    a.getState().gpuInfoReceived({ ok: true, value: REPORT });
    const saved = JSON.parse(storage.data.get(STORAGE_KEY) ?? '{}') as { state: Record<string, unknown> };
    expect(Object.keys(saved.state)).toEqual(['settings']);

    const b = createStudioStore(storage);
    expect(b.getState().settings.r).toBe(32);
    expect(b.getState().settings.lr_scheduler_type).toBe('linear');
    expect(b.getState().datasetFiles).toEqual([]);
    expect(b.getState().gpu.status).toBe('probing');
  });

  it('ignores stored values that are invalid or out of range', () => {
    const restored = restoreSettings({
      r: 1e9,
      lora_alpha: 'sixteen',
      lr_scheduler_type: 'warp-speed',
      target_modules: ['q_proj', 3],
      unknown_field: true,
    });
    expect(restored.r).toBe(256);
    expect(restored.lora_alpha).toBe(DEFAULT_SETTINGS.lora_alpha);
    expect(restored.lr_scheduler_type).toBe(DEFAULT_SETTINGS.lr_scheduler_type);
    expect(restored.target_modules).toEqual(['q_proj']);
    expect(restored).not.toHaveProperty('unknown_field');
    expect(restoreSettings('garbage')).toEqual(DEFAULT_SETTINGS);
  });
});

describe('gpu, engine and metrics slices', () => {
  it('tells a missing WebGPU apart from other failures', () => {
    const store = createStudioStore(memoryStorage());
    const s = () => store.getState();
    s().gpuInfoReceived({
      ok: false,
      error: { code: 'webgpu-unavailable', message: 'no', advice: 'enable it' },
    });
    expect(s().gpu.status).toBe('unavailable');
    expect(s().gpu.error?.advice).toBe('enable it');
    s().gpuInfoReceived({ ok: false, error: { code: 'internal', message: 'boom' } });
    expect(s().gpu.status).toBe('error');
    s().gpuInfoReceived({ ok: true, value: REPORT });
    expect(s().gpu).toMatchObject({ status: 'ready', report: REPORT, error: null });
  });

  it('records the self-test verdict', () => {
    const store = createStudioStore(memoryStorage());
    const s = () => store.getState();
    s().selfTestStarted();
    expect(s().gpu.selfTest.status).toBe('running');
    s().selfTestFinished({ ok: true, value: { ...SELF_TEST, passed: false } });
    expect(s().gpu.selfTest.status).toBe('failed');
    s().selfTestFinished({ ok: false, error: { code: 'internal', message: 'lost' } });
    expect(s().gpu.selfTest).toMatchObject({ status: 'error', result: null });
  });

  it('keeps one step series per run and one memory timeline', () => {
    const store = createStudioStore(memoryStorage());
    const s = () => store.getState();
    s().memorySampled(SELF_TEST.memory, 10);
    expect(s().metrics.memory.map((m) => m.t)).toEqual([10, 10.5]);
    s().metricsReceived('run-1', point(1), 20);
    s().metricsReceived('run-1', point(2), 21);
    expect(s().metrics.points.map((p) => p.step)).toEqual([1, 2]);
    s().metricsReceived('run-2', point(1), 30);
    expect(s().metrics).toMatchObject({ runId: 'run-2', points: [point(1)] });
    expect(s().metrics.memory).toHaveLength(5);
    expect(s().metrics.memory[4]).toEqual({ t: 30, liveBytes: 4096, peakBytes: 4096 });
    s().metricsCleared();
    expect(s().metrics.points).toEqual([]);
  });

  it('says why Start is blocked, until everything is in place', () => {
    const store = createStudioStore(memoryStorage());
    const s = () => store.getState();
    expect(startBlocker(s())).toMatch(/WebGPU/);
    s().gpuInfoReceived({ ok: true, value: REPORT });
    expect(startBlocker(s())).toMatch(/engine is not loaded yet/);
    s().modelLoadRequested();
    expect(s().engine.loading).toBe(true);
    s().modelLoaded({ name: 'tiny', architecture: 'llama', parameters: 1e6 });
    expect(startBlocker(s())).toMatch(/dataset/);
    s().datasetFilesDropped([new File(['{}'], 'd.jsonl')]);
    expect(startBlocker(s())).toBeNull();
    s().runRequested();
    expect(startBlocker(s())).toMatch(/in progress/);
    s().engineFailed({ code: 'not-implemented', message: 'not yet' });
    expect(s().engine).toMatchObject({ runStatus: 'idle', lastError: { code: 'not-implemented' } });
    s().engineErrorDismissed();
    expect(s().engine.lastError).toBeNull();
  });
});

describe('worker protocol', () => {
  it('lists every command and event kind', () => {
    expect(COMMAND_TYPES.sort()).toEqual(
      [
        'deleteRun',
        'evaluate',
        'export',
        'gpuInfo',
        'listRuns',
        'load',
        'pause',
        'resume',
        'selfTest',
        'start',
        'stop',
      ].sort(),
    );
    expect(EVENT_TYPES).toEqual(expect.arrayContaining(['started', 'loaded', 'evaluated', 'exported']));
    expect(EVENT_TYPES).toEqual(
      expect.arrayContaining([
        'progress',
        'metrics',
        'advice',
        'checkpoint',
        'error',
        'done',
        'gpuInfo',
        'selfTest',
      ]),
    );
  });

  it('validates messages shallowly', () => {
    expect(isWorkerCommand({ type: 'gpuInfo', id: 1 })).toBe(true);
    expect(isWorkerCommand({ type: 'gpuInfo' })).toBe(false);
    expect(isWorkerCommand({ type: 'toString', id: 1 })).toBe(false);
    expect(isWorkerCommand(null)).toBe(false);
    expect(isWorkerEvent({ type: 'metrics', runId: 'r', point: point(1) })).toBe(true);
    expect(isWorkerEvent({ type: 'hasOwnProperty' })).toBe(false);
  });

  it('dispatches each command to its own handler', async () => {
    const calls: string[] = [];
    const handlers = Object.fromEntries(
      COMMAND_TYPES.map((t) => [t, (c: WorkerCommand) => void calls.push(`${t}:${c.type}:${c.id}`)]),
    ) as CommandHandlers;
    await dispatchCommand(handlers, { type: 'stop', id: 4, runId: 'r' });
    await dispatchCommand(handlers, { type: 'selfTest', id: 5 });
    expect(calls).toEqual(['stop:stop:4', 'selfTest:selfTest:5']);
  });

  it('turns thrown errors into values, keeping the advice', () => {
    expect(toErrorValue(new WebGpuUnavailableError('gone', 'enable it'))).toEqual({
      code: 'webgpu-unavailable',
      message: 'gone',
      advice: 'enable it',
    });
    expect(toErrorValue(new Error('x'), 'bad-request')).toEqual({ code: 'bad-request', message: 'x' });
    expect(toErrorValue('y')).toEqual({ code: 'internal', message: 'y' });
  });

  it('answers gpuInfo with the error value when WebGPU is missing, and retries on the next command', async () => {
    const events: WorkerEvent[] = [];
    const acquire = vi.fn(() => Promise.reject(new WebGpuUnavailableError('no gpu', 'enable it')));
    const handlers = createHandlers((e) => events.push(e), acquire as () => Promise<GpuContext>);
    await handlers.gpuInfo({ type: 'gpuInfo', id: 1 });
    await handlers.gpuInfo({ type: 'gpuInfo', id: 2 });
    expect(acquire).toHaveBeenCalledTimes(2);
    expect(events[0]).toEqual({
      type: 'gpuInfo',
      id: 1,
      result: { ok: false, error: { code: 'webgpu-unavailable', message: 'no gpu', advice: 'enable it' } },
    });
    await handlers.pause({ type: 'pause', id: 3, runId: 'r' });
    expect(events[2]).toMatchObject({ type: 'error', id: 3, runId: 'r', error: { code: 'no-run' } });
    await handlers.start({
      type: 'start',
      id: 4,
      config: trainConfig(DEFAULT_SETTINGS),
      dataset: { files: [] },
    });
    expect(events[3]).toMatchObject({
      type: 'error',
      id: 4,
      error: { code: 'no-model', advice: 'Load a model first.' },
    });
  });
});

describe('page ↔ worker wiring', () => {
  it('sends numbered commands, follows gpuInfo with the self-test, and feeds the store', () => {
    const sent: WorkerCommand[] = [];
    const listeners: ((ev: MessageEvent<unknown>) => void)[] = [];
    const worker: WorkerLike = {
      postMessage: (m) => void sent.push(m),
      addEventListener: (type: string, l: (ev: never) => void) => {
        if (type === 'message') listeners.push(l as (ev: MessageEvent<unknown>) => void);
      },
      terminate: () => {},
    };
    const reply = (data: unknown) => listeners.forEach((l) => l({ data } as MessageEvent<unknown>));
    const store = createStudioStore(memoryStorage());
    const engine = connectEngine(store, worker);

    engine.probeGpu();
    expect(sent).toEqual([{ type: 'gpuInfo', id: 1 }]);
    reply({ type: 'gpuInfo', id: 1, result: { ok: true, value: REPORT } });
    expect(sent[1]).toEqual({ type: 'selfTest', id: 2 });
    expect(store.getState().gpu.selfTest.status).toBe('running');
    reply({ type: 'selfTest', id: 2, result: { ok: true, value: SELF_TEST } });
    expect(store.getState().gpu.selfTest.status).toBe('passed');
    expect(store.getState().metrics.memory).toHaveLength(2);

    reply({ type: 'not-an-event' });
    engine.loadModel({ kind: 'hub', repo: 'org/model' });
    expect(sent[2]).toMatchObject({ type: 'load', id: 3 });
    reply({ type: 'error', id: 3, runId: null, error: { code: 'not-implemented', message: 'later' } });
    expect(store.getState().engine).toMatchObject({ loading: false, lastError: { message: 'later' } });
  });

  it('runs the whole run lifecycle through the store: load, start, metrics, pause, done, export', () => {
    const sent: WorkerCommand[] = [];
    const listeners: ((ev: MessageEvent<unknown>) => void)[] = [];
    const worker: WorkerLike = {
      postMessage: (m) => void sent.push(m),
      addEventListener: (type: string, l: (ev: never) => void) => {
        if (type === 'message') listeners.push(l as (ev: MessageEvent<unknown>) => void);
      },
      terminate: () => {},
    };
    const reply = (data: WorkerEvent) => listeners.forEach((l) => l({ data } as MessageEvent<unknown>));
    const store = createStudioStore(memoryStorage());
    const s = () => store.getState();
    const engine = connectEngine(store, worker);
    const data = new File(['{}'], 'd.jsonl');
    s().gpuInfoReceived({ ok: true, value: REPORT });
    s().datasetFilesDropped([data]);
    s().settingChanged('max_steps', 2);

    engine.loadModel({ kind: 'hub', repo: 'org/model' });
    expect(sent.at(-1)).toMatchObject({
      type: 'load',
      model: { kind: 'hub', repo: 'org/model' },
      dataset: { files: [data] },
      config: { max_steps: 2, r: 8 },
    });
    expect(sent.at(-1)).not.toHaveProperty('config.modelRepo');
    expect(startBlocker(s())).toMatch(/loading/);
    reply({ type: 'progress', runId: null, phase: 'upload weights', done: 5, total: 10 });
    expect(s().engine.progress).toEqual({ phase: 'upload weights', done: 5, total: 10 });
    const line = 'trainable params: 8 || all params: 16 || trainable%: 50.0000';
    const dataset = {
      file: 'd.jsonl',
      format: 'text',
      rowsRead: 1,
      rowsUsed: 1,
      skipped: 0,
      skippedExamples: [],
      truncated: 0,
      duplicates: 0,
      trainedTokens: 3,
      trainExamples: 1,
      evalExamples: 0,
      maxLength: 512,
    };
    reply({
      type: 'loaded',
      id: 1,
      model: { name: 'm', architecture: 'llama', parameters: 16 },
      trainableLine: line,
      dataset,
    });
    expect(s().engine).toMatchObject({ loading: false, trainableLine: line, dataset: { file: 'd.jsonl' } });
    expect(startBlocker(s())).toBeNull();

    engine.startRun();
    expect(sent.at(-1)).toMatchObject({
      type: 'start',
      config: { max_steps: 2 },
      dataset: { files: [data] },
    });
    expect(s().engine.runStatus).toBe('starting');
    reply({
      type: 'started',
      id: 2,
      runId: 'r1',
      totalSteps: 2,
      step: 0,
      resumedFrom: null,
      trainableLine: line,
    });
    reply({ type: 'metrics', runId: 'r1', point: point(1) });
    reply({ type: 'progress', runId: 'r1', phase: 'train', done: 1, total: 0 });
    expect(s().engine).toMatchObject({ runStatus: 'running', run: { step: 1, totalSteps: 2 } });
    expect(s().engine.progress).toEqual({ phase: 'train', done: 1, total: 2 });
    reply({ type: 'advice', runId: 'r1', message: 'Lower the learning rate.' });
    expect(s().engine.advice).toEqual(['Lower the learning rate.']);

    engine.pauseRun();
    expect(sent.at(-1)).toMatchObject({ type: 'pause', runId: 'r1' });
    expect(s().engine.runStatus).toBe('pausing');
    reply({ type: 'checkpoint', runId: 'r1', step: 1, bytes: 100 });
    reply({ type: 'done', runId: 'r1', reason: 'paused', steps: 1, message: 'stopped at step 1' });
    expect(s().engine).toMatchObject({ runStatus: 'paused', run: { checkpoint: { step: 1, bytes: 100 } } });
    // The adapter files are fetched at once, so the download buttons are ready.
    expect(sent.at(-1)).toMatchObject({ type: 'export', runId: 'r1', what: 'adapter' });

    engine.resumeRun();
    expect(sent.at(-1)).toMatchObject({ type: 'resume', runId: 'r1' });
    reply({ type: 'metrics', runId: 'r1', point: point(2) });
    reply({ type: 'done', runId: 'r1', reason: 'finished', steps: 2, message: 'trained 2 steps' });
    expect(s().engine).toMatchObject({ runStatus: 'done', run: { step: 2, reason: 'finished' } });
    expect(s().metrics.points.map((p) => p.step)).toEqual([1, 2]);
    const zip = { name: 'm-lora.zip', data: new ArrayBuffer(4) };
    reply({ type: 'exported', id: 9, runId: 'r1', what: 'adapter', files: [zip] });
    expect(s().engine.exports).toMatchObject({ pending: null, adapter: [zip], merged: [] });

    engine.evaluate('Once');
    expect(sent.at(-1)).toMatchObject({ type: 'evaluate', runId: 'r1', prompt: 'Once' });
    expect(s().engine.evaluation.status).toBe('running');
    reply({
      type: 'evaluated',
      id: 10,
      runId: 'r1',
      result: { ok: false, error: { code: 'internal', message: 'boom' } },
    });
    expect(s().engine).toMatchObject({ evaluation: { status: 'error' }, lastError: { message: 'boom' } });

    // A run error is shown and marks a running run as failed; errors of other runs leave it alone.
    engine.startRun();
    reply({
      type: 'started',
      id: 11,
      runId: 'r2',
      totalSteps: 2,
      step: 0,
      resumedFrom: null,
      trainableLine: line,
    });
    reply({ type: 'error', id: null, runId: 'old', error: { code: 'internal', message: 'elsewhere' } });
    expect(s().engine.runStatus).toBe('running');
    reply({ type: 'error', id: 11, runId: 'r2', error: { code: 'internal', message: 'out of memory' } });
    expect(s().engine).toMatchObject({ runStatus: 'failed', lastError: { message: 'out of memory' } });
    expect(startBlocker(s())).toBeNull();
  });

  it('lists saved runs, resumes one with the dropped dataset after a reload, and deletes one', () => {
    const sent: WorkerCommand[] = [];
    const listeners: ((ev: MessageEvent<unknown>) => void)[] = [];
    const worker: WorkerLike = {
      postMessage: (m) => void sent.push(m),
      addEventListener: (type: string, l: (ev: never) => void) => {
        if (type === 'message') listeners.push(l as (ev: MessageEvent<unknown>) => void);
      },
      terminate: () => {},
    };
    const reply = (data: WorkerEvent) => listeners.forEach((l) => l({ data } as MessageEvent<unknown>));
    const store = createStudioStore(memoryStorage());
    const s = () => store.getState();
    const engine = connectEngine(store, worker);
    const saved: SavedRun = {
      runId: 'r1',
      model: 'org/model',
      dataset: { name: 'd.jsonl', size: 2 },
      step: 2,
      totalSteps: 4,
      createdAt: '2024-06-01T00:00:00.000Z',
    };

    engine.listRuns();
    expect(sent.at(-1)).toEqual({ type: 'listRuns', id: 1 });
    reply({ type: 'runs', id: 1, result: { ok: true, value: [saved] } });
    expect(s().engine.savedRuns).toEqual([saved]);

    // Resume says what to load until the model and the same dataset file are there.
    s().gpuInfoReceived({ ok: true, value: REPORT });
    expect(resumeBlocker(s(), saved)).toBe('Load org/model with the dataset d.jsonl first.');
    s().modelLoaded({ name: 'org/model', architecture: 'llama', parameters: 16 });
    s().datasetFilesDropped([new File(['{}{}'], 'd.jsonl')]);
    expect(resumeBlocker(s(), saved)).toMatch(/^Load org\/model/);
    const data = new File(['{}'], 'd.jsonl');
    s().datasetFilesDropped([data]);
    expect(resumeBlocker(s(), saved)).toBeNull();

    engine.resumeSavedRun('r1');
    expect(sent.at(-1)).toMatchObject({ type: 'resume', runId: 'r1', dataset: { files: [data] } });
    expect(s().engine.runStatus).toBe('starting');
    expect(resumeBlocker(s(), saved)).toMatch(/in progress/);
    reply({
      type: 'started',
      id: 2,
      runId: 'r1',
      totalSteps: 4,
      step: 2,
      resumedFrom: 'checkpoint-2',
      trainableLine: 'x',
    });
    expect(s().engine).toMatchObject({ runId: 'r1', runStatus: 'running', run: { step: 2, totalSteps: 4 } });
    expect(sent.at(-1)).toMatchObject({ type: 'listRuns' });
    reply({ type: 'done', runId: 'r1', reason: 'finished', steps: 4, message: 'trained 4 steps' });
    expect(sent.slice(-2).map((c) => c.type)).toEqual(['listRuns', 'export']);

    // A refused resume (another dataset in the worker's eyes) leaves the page ready to try again.
    engine.resumeSavedRun('r1');
    reply({
      type: 'error',
      id: sent.at(-1)!.id,
      runId: 'r1',
      error: { code: 'bad-request', message: 'other data', advice: 'Load org/model and the dataset d.jsonl' },
    });
    expect(s().engine).toMatchObject({ runStatus: 'idle', lastError: { message: 'other data' } });

    engine.deleteRun('r1');
    expect(sent.at(-1)).toMatchObject({ type: 'deleteRun', runId: 'r1' });
    reply({ type: 'runs', id: sent.at(-1)!.id, result: { ok: true, value: [] } });
    expect(s().engine.savedRuns).toEqual([]);
  });
});
