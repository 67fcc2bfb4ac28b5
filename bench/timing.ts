// Timing for benchmarks: a warm-up run (pipeline compiles), then the mean of `reps` runs, GPU work included.
import type { GpuContext } from '../src/gpu/context';

export async function time(ctx: GpuContext, run: () => void, reps: number): Promise<number> {
  run();
  await ctx.sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run();
  await ctx.sync();
  return (performance.now() - t0) / reps;
}
