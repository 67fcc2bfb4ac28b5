// One GPU context per test file (Dawn + SwiftShader on CPU-only machines), closed when the file ends.
import { afterAll } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { createNodeGpu } from '../../src/gpu/node';

let ctx: Promise<GpuContext> | null = null;

export function testGpu(): Promise<GpuContext> {
  if (!ctx) {
    ctx = createNodeGpu();
    afterAll(async () => {
      const c = await ctx;
      c?.destroy();
      ctx = null;
    });
  }
  return ctx;
}
