// Metrics slice: the series the charts draw (per optimizer step, and GPU memory over time).
import type { MemorySample, MetricPoint } from '../../worker/protocol';
import type { SliceCreator } from './types';

/** Longer series keep only their newest points, so a long run cannot grow the page without bound. */
export const MAX_POINTS = 5000;

export interface MetricsState {
  runId: string | null;
  points: MetricPoint[];
  /** GPU pool bytes; `t` in seconds since the page began sampling. */
  memory: MemorySample[];
}

export interface MetricsSlice {
  metrics: MetricsState;
  metricsReceived(runId: string, point: MetricPoint, atSeconds: number): void;
  memorySampled(samples: readonly MemorySample[], offsetSeconds: number): void;
  metricsCleared(): void;
}

function capped<T>(xs: T[]): T[] {
  return xs.length > MAX_POINTS ? xs.slice(xs.length - MAX_POINTS) : xs;
}

export const createMetricsSlice: SliceCreator<MetricsSlice> = (set) => ({
  metrics: { runId: null, points: [], memory: [] },
  metricsReceived: (runId, point, atSeconds) =>
    set((s) => {
      // A new run starts its own step series; memory stays one timeline.
      const points = s.metrics.runId === runId ? s.metrics.points : [];
      const peak = s.metrics.memory.reduce((m, x) => Math.max(m, x.peakBytes), point.gpu_bytes);
      return {
        metrics: {
          runId,
          points: capped([...points, point]),
          memory: capped([
            ...s.metrics.memory,
            { t: atSeconds, liveBytes: point.gpu_bytes, peakBytes: Math.max(peak, point.gpu_bytes) },
          ]),
        },
      };
    }),
  memorySampled: (samples, offsetSeconds) =>
    set((s) => ({
      metrics: {
        ...s.metrics,
        memory: capped([
          ...s.metrics.memory,
          ...samples.map((x) => ({ ...x, t: offsetSeconds + x.t / 1000 })),
        ]),
      },
    })),
  metricsCleared: () => set({ metrics: { runId: null, points: [], memory: [] } }),
});
