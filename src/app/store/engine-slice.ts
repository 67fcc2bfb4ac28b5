// Engine slice: the model the worker has loaded, the dataset report, the current run, evaluation and exports.
import type {
  DatasetSummary,
  ErrorValue,
  EvalResult,
  ExportedFile,
  ExportKind,
  ModelInfo,
  Result,
  RunId,
  SavedRun,
} from '../../worker/protocol';
import type { SliceCreator } from './types';

export type RunStatus =
  'idle' | 'starting' | 'running' | 'pausing' | 'paused' | 'stopping' | 'done' | 'failed';

export type DoneReason = 'finished' | 'stopped' | 'paused' | 'diverged';

export interface RunInfo {
  totalSteps: number;
  step: number;
  resumedFrom: string | null;
  /** The engine's last word on the run ("trained 20 steps", why it diverged). */
  message: string | null;
  reason: DoneReason | null;
  /** Step of the newest checkpoint, and its size. */
  checkpoint: { step: number; bytes: number } | null;
}

export interface EvalState {
  status: 'idle' | 'running' | 'done' | 'error';
  result: EvalResult | null;
}

export interface ExportState {
  pending: ExportKind | null;
  adapter: ExportedFile[];
  merged: ExportedFile[];
}

export interface EngineState {
  model: ModelInfo | null;
  /** PEFT's print_trainable_parameters line for the current settings. */
  trainableLine: string | null;
  dataset: DatasetSummary | null;
  loading: boolean;
  runId: RunId | null;
  runStatus: RunStatus;
  run: RunInfo | null;
  progress: { phase: string; done: number; total: number } | null;
  lastError: ErrorValue | null;
  advice: string[];
  evaluation: EvalState;
  exports: ExportState;
  /** Runs whose checkpoints the browser keeps, newest first: resumable after a reload. */
  savedRuns: SavedRun[];
}

export interface EngineSlice {
  engine: EngineState;
  modelLoadRequested(): void;
  modelLoaded(model: ModelInfo, trainableLine?: string, dataset?: DatasetSummary | null): void;
  runRequested(): void;
  runStarted(
    runId: RunId,
    totalSteps: number,
    step: number,
    resumedFrom: string | null,
    trainableLine: string,
  ): void;
  runProgress(runId: RunId | null, phase: string, done: number, total: number): void;
  runStepDone(runId: RunId, step: number): void;
  checkpointSaved(runId: RunId, step: number, bytes: number): void;
  runPauseRequested(): void;
  runResumeRequested(): void;
  runStopRequested(): void;
  runDone(runId: RunId, reason?: DoneReason, steps?: number, message?: string): void;
  engineFailed(error: ErrorValue, runId?: RunId | null): void;
  adviceReceived(message: string): void;
  engineErrorDismissed(): void;
  evaluationRequested(): void;
  evaluationFinished(runId: RunId, result: Result<EvalResult>): void;
  exportRequested(what: ExportKind): void;
  exportReceived(runId: RunId, what: ExportKind, files: ExportedFile[]): void;
  savedRunsReceived(result: Result<SavedRun[]>): void;
}

const MAX_ADVICE = 20;

const noExports: ExportState = { pending: null, adapter: [], merged: [] };

export const initialEngine: EngineState = {
  model: null,
  trainableLine: null,
  dataset: null,
  loading: false,
  runId: null,
  runStatus: 'idle',
  run: null,
  progress: null,
  lastError: null,
  advice: [],
  evaluation: { status: 'idle', result: null },
  exports: noExports,
  savedRuns: [],
};

/** A run is under way (Start is blocked, Pause / Stop apply). */
export function isRunActive(status: RunStatus): boolean {
  return (
    status === 'starting' ||
    status === 'running' ||
    status === 'pausing' ||
    status === 'paused' ||
    status === 'stopping'
  );
}

export const createEngineSlice: SliceCreator<EngineSlice> = (set) => {
  /** Applies `f` to the engine state only when the event belongs to the current run. */
  const forRun = (runId: RunId, f: (e: EngineState) => Partial<EngineState>) =>
    set((s) => (s.engine.runId === runId ? { engine: { ...s.engine, ...f(s.engine) } } : {}));
  return {
    engine: initialEngine,
    modelLoadRequested: () =>
      set((s) => ({ engine: { ...s.engine, loading: true, lastError: null, progress: null } })),
    modelLoaded: (model, trainableLine, dataset) =>
      set((s) => ({
        engine: {
          ...s.engine,
          model,
          loading: false,
          progress: null,
          trainableLine: trainableLine || s.engine.trainableLine,
          dataset: dataset === undefined ? s.engine.dataset : (dataset ?? s.engine.dataset),
        },
      })),
    runRequested: () =>
      set((s) => ({
        engine: {
          ...s.engine,
          runStatus: 'starting',
          lastError: null,
          run: null,
          advice: [],
          evaluation: { status: 'idle', result: null },
          exports: noExports,
        },
      })),
    runStarted: (runId, totalSteps, step, resumedFrom, trainableLine) =>
      set((s) => ({
        engine: {
          ...s.engine,
          runId,
          runStatus: 'running',
          trainableLine,
          run: { totalSteps, step, resumedFrom, message: null, reason: null, checkpoint: null },
        },
      })),
    runProgress: (runId, phase, done, total) =>
      set((s) => {
        if (runId !== null && runId !== s.engine.runId) return {};
        // A training step reports no total: the run's plan has it.
        const t = total || s.engine.run?.totalSteps || 0;
        return { engine: { ...s.engine, progress: { phase, done, total: t } } };
      }),
    runStepDone: (runId, step) => forRun(runId, (e) => ({ run: e.run ? { ...e.run, step } : e.run })),
    checkpointSaved: (runId, step, bytes) =>
      forRun(runId, (e) => ({ run: e.run ? { ...e.run, checkpoint: { step, bytes } } : e.run })),
    runPauseRequested: () => set((s) => ({ engine: { ...s.engine, runStatus: 'pausing' } })),
    runResumeRequested: () =>
      set((s) => ({
        engine: {
          ...s.engine,
          runStatus: 'running',
          lastError: null,
          evaluation: { status: 'idle', result: null },
          exports: noExports,
        },
      })),
    runStopRequested: () => set((s) => ({ engine: { ...s.engine, runStatus: 'stopping' } })),
    runDone: (runId, reason = 'finished', steps, message) =>
      forRun(runId, (e) => ({
        runStatus: reason === 'paused' ? 'paused' : 'done',
        run: {
          totalSteps: e.run?.totalSteps ?? steps ?? 0,
          step: steps ?? e.run?.step ?? 0,
          resumedFrom: e.run?.resumedFrom ?? null,
          checkpoint: e.run?.checkpoint ?? null,
          message: message ?? null,
          reason,
        },
      })),
    engineFailed: (error, runId = null) =>
      set((s) => {
        const ofRun = runId !== null && runId === s.engine.runId;
        const runStatus: RunStatus =
          s.engine.runStatus === 'starting'
            ? 'idle'
            : ofRun && (s.engine.runStatus === 'running' || s.engine.runStatus === 'stopping')
              ? 'failed'
              : s.engine.runStatus === 'pausing'
                ? 'running'
                : s.engine.runStatus;
        return {
          engine: {
            ...s.engine,
            loading: false,
            progress: null,
            runStatus,
            lastError: error,
            exports: { ...s.engine.exports, pending: null },
          },
        };
      }),
    adviceReceived: (message) =>
      set((s) => ({ engine: { ...s.engine, advice: [...s.engine.advice, message].slice(-MAX_ADVICE) } })),
    engineErrorDismissed: () => set((s) => ({ engine: { ...s.engine, lastError: null } })),
    evaluationRequested: () =>
      set((s) => ({
        engine: { ...s.engine, lastError: null, evaluation: { status: 'running', result: null } },
      })),
    evaluationFinished: (runId, result) =>
      forRun(runId, () =>
        result.ok
          ? { evaluation: { status: 'done', result: result.value } }
          : { evaluation: { status: 'error', result: null }, lastError: result.error },
      ),
    exportRequested: (what) =>
      set((s) => ({ engine: { ...s.engine, exports: { ...s.engine.exports, pending: what } } })),
    exportReceived: (runId, what, files) =>
      forRun(runId, (e) => ({ exports: { ...e.exports, pending: null, [what]: files } })),
    savedRunsReceived: (result) =>
      set((s) => ({
        engine: result.ok
          ? { ...s.engine, savedRuns: result.value }
          : { ...s.engine, lastError: result.error },
      })),
  };
};
