// Engine slice: the model the worker has loaded, the current run, and what the engine last said.
import type { ErrorValue, ModelInfo, RunId } from '../../worker/protocol';
import type { SliceCreator } from './types';

export type RunStatus = 'idle' | 'starting' | 'running' | 'paused' | 'done';

export interface EngineState {
  model: ModelInfo | null;
  loading: boolean;
  runId: RunId | null;
  runStatus: RunStatus;
  progress: { phase: string; done: number; total: number } | null;
  lastError: ErrorValue | null;
  advice: string[];
}

export interface EngineSlice {
  engine: EngineState;
  modelLoadRequested(): void;
  modelLoaded(model: ModelInfo): void;
  runRequested(): void;
  runProgress(runId: RunId, phase: string, done: number, total: number): void;
  runPaused(): void;
  runResumed(): void;
  runDone(runId: RunId): void;
  engineFailed(error: ErrorValue): void;
  adviceReceived(message: string): void;
  engineErrorDismissed(): void;
}

const MAX_ADVICE = 20;

export const initialEngine: EngineState = {
  model: null,
  loading: false,
  runId: null,
  runStatus: 'idle',
  progress: null,
  lastError: null,
  advice: [],
};

export const createEngineSlice: SliceCreator<EngineSlice> = (set) => ({
  engine: initialEngine,
  modelLoadRequested: () => set((s) => ({ engine: { ...s.engine, loading: true, lastError: null } })),
  modelLoaded: (model) => set((s) => ({ engine: { ...s.engine, model, loading: false } })),
  runRequested: () => set((s) => ({ engine: { ...s.engine, runStatus: 'starting', lastError: null } })),
  runProgress: (runId, phase, done, total) =>
    set((s) => ({ engine: { ...s.engine, runId, runStatus: 'running', progress: { phase, done, total } } })),
  runPaused: () => set((s) => ({ engine: { ...s.engine, runStatus: 'paused' } })),
  runResumed: () => set((s) => ({ engine: { ...s.engine, runStatus: 'running' } })),
  runDone: (runId) =>
    set((s) => (s.engine.runId === runId ? { engine: { ...s.engine, runStatus: 'done' } } : {})),
  engineFailed: (error) =>
    set((s) => ({
      engine: {
        ...s.engine,
        loading: false,
        runStatus: s.engine.runStatus === 'starting' ? 'idle' : s.engine.runStatus,
        lastError: error,
      },
    })),
  adviceReceived: (message) =>
    set((s) => ({ engine: { ...s.engine, advice: [...s.engine.advice, message].slice(-MAX_ADVICE) } })),
  engineErrorDismissed: () => set((s) => ({ engine: { ...s.engine, lastError: null } })),
});
