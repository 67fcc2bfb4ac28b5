// `lora-studio gpu-info`: the adapter, its limits and features, as text or JSON.
import { formatReport } from '../../gpu/acquire';
import { createNodeGpu } from '../../gpu/node';
import type { Command } from '../command';

export const gpuInfo: Command = {
  summary: 'show the WebGPU adapter, its limits and features',
  usage: '  --json    print the report as JSON',
  options: { json: { type: 'boolean' } },
  async run(values) {
    const ctx = await createNodeGpu({ yieldMainThread: false });
    const report = ctx.report;
    console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
    ctx.destroy();
    return 0;
  },
};
