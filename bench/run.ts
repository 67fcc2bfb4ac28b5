// `npm run bench`: kernel and training benchmarks, each printed with its ratio against a peer measured in the same run.
import { formatReport } from '../src/gpu/acquire';
import { createNodeGpu } from '../src/gpu/node';
import { benchMatmul } from './matmul';

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
ctx.destroy();
