// GPU slice: what the worker reported about the adapter, and the self-test outcome.
import type { GpuReport } from '../../gpu/acquire';
import type { ErrorValue, Result, SelfTestResult } from '../../worker/protocol';
import type { SliceCreator } from './types';

export type GpuStatus = 'probing' | 'ready' | 'unavailable' | 'error';
export type SelfTestStatus = 'idle' | 'running' | 'passed' | 'failed' | 'error';

export interface GpuState {
  status: GpuStatus;
  report: GpuReport | null;
  error: ErrorValue | null;
  selfTest: { status: SelfTestStatus; result: SelfTestResult | null; error: ErrorValue | null };
}

export interface GpuSlice {
  gpu: GpuState;
  gpuProbeStarted(): void;
  gpuInfoReceived(result: Result<GpuReport>): void;
  selfTestStarted(): void;
  selfTestFinished(result: Result<SelfTestResult>): void;
}

export const initialGpu: GpuState = {
  status: 'probing',
  report: null,
  error: null,
  selfTest: { status: 'idle', result: null, error: null },
};

export const createGpuSlice: SliceCreator<GpuSlice> = (set) => ({
  gpu: initialGpu,
  gpuProbeStarted: () => set({ gpu: initialGpu }),
  gpuInfoReceived: (result) =>
    set((s) => ({
      gpu: result.ok
        ? { ...s.gpu, status: 'ready', report: result.value, error: null }
        : {
            ...s.gpu,
            status: result.error.code === 'webgpu-unavailable' ? 'unavailable' : 'error',
            report: null,
            error: result.error,
          },
    })),
  selfTestStarted: () =>
    set((s) => ({ gpu: { ...s.gpu, selfTest: { status: 'running', result: null, error: null } } })),
  selfTestFinished: (result) =>
    set((s) => ({
      gpu: {
        ...s.gpu,
        selfTest: result.ok
          ? { status: result.value.passed ? 'passed' : 'failed', result: result.value, error: null }
          : { status: 'error', result: null, error: result.error },
      },
    })),
});
