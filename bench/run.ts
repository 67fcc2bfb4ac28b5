// `npm run bench`: kernel and training benchmarks, each printed with its ratio against a peer measured in the same run.
import { formatReport } from '../src/gpu/acquire';
import { createNodeGpu } from '../src/gpu/node';
import { STORIES_260K, benchKernels } from './kernels';
import { benchMatmul } from './matmul';
import { benchOrt } from './ort';
import { benchStep } from './step';

const quick = process.argv.includes('--quick');
const ctx = await createNodeGpu();
console.log(formatReport(ctx.report).split('\n').slice(0, 3).join('\n'));
const shapes: [number, number, number][] = quick
  ? [[128, 128, 128]]
  : [
      [256, 256, 256],
      [512, 512, 512],
      [1024, 64, 1024],
    ];
for (const line of await benchMatmul(ctx, shapes, quick ? 2 : 5)) console.log(line);
for (const line of await benchKernels(ctx, STORIES_260K, quick ? 2 : 5)) console.log(line);
const step = quick ? { B: 2, T: 64, reps: 1, perKernel: false } : { B: 8, T: 128, reps: 3, perKernel: true };
for (const line of await benchStep(ctx, step)) console.log(line);
// onnxruntime-web's WebGPU EP on the same device, as an independent check of the matmul kernel; never fatal.
try {
  for (const line of await benchOrt(ctx, shapes, quick ? 2 : 5)) console.log(line);
} catch (e) {
  console.log(`ort: skipped: ${(e as Error).message.split('\n')[0]}`);
}
ctx.destroy();
