// Matmul throughput: the tiled kernel against a naive WGSL kernel (the peer), both measured in this run.
import { readFileSync } from 'node:fs';
import type { GpuContext } from '../src/gpu/context';
import { Params } from '../src/gpu/kernel';
import { matmul } from '../src/ops/matmul';
import { time } from './timing';

const naiveCode = readFileSync(new URL('./naive-matmul.wgsl', import.meta.url), 'utf8');

export async function benchMatmul(
  ctx: GpuContext,
  shapes: [number, number, number][],
  reps: number,
): Promise<string[]> {
  const module = ctx.device.createShaderModule({ code: naiveCode, label: 'naive matmul' });
  const naive = ctx.device.createComputePipeline({
    layout: 'auto',
    compute: { module, entryPoint: 'naive' },
    label: 'naive',
  });
  const lines: string[] = [];
  for (const [M, N, K] of shapes) {
    const A = ctx.upload(new Float32Array(M * K).fill(0.5), [M, K], 'f32', 'A');
    const B = ctx.upload(new Float32Array(K * N).fill(0.25), [K, N], 'f32', 'B');
    const C = ctx.empty([M, N], 'f32', 'C');
    const tiled = await time(ctx, () => matmul(ctx, A, B).dispose(), reps);
    const params = ctx.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    ctx.device.queue.writeBuffer(params, 0, new Params().u32(M).u32(N).u32(K).bytes());
    const bind = ctx.device.createBindGroup({
      layout: naive.getBindGroupLayout(0),
      entries: [params, A.buffer, B.buffer, C.buffer].map((buffer, binding) => ({
        binding,
        resource: { buffer },
      })),
    });
    const peer = await time(
      ctx,
      () => {
        ctx.flush();
        const enc = ctx.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(naive);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(Math.ceil(N / 8), Math.ceil(M / 8));
        pass.end();
        ctx.device.queue.submit([enc.finish()]);
      },
      reps,
    );
    const gflops = (ms: number) => (2 * M * N * K) / (ms * 1e6);
    lines.push(
      `matmul ${M}x${K}x${N}: tiled ${gflops(tiled).toFixed(2)} GFLOP/s, naive ${gflops(peer).toFixed(2)} GFLOP/s, ratio ${(peer / tiled).toFixed(2)}x`,
    );
    for (const t of [A, B, C]) t.dispose();
    params.destroy();
  }
  return lines;
}
