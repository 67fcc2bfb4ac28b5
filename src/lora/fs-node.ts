// Node only: adapter folders and output folders on disk. Browser code never imports this file.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutFile } from './adapter-io';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, importAdapter } from './adapter-io';
import type { Adapter } from './config';

/** Reads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors). */
export async function readAdapterDir(dir: string): Promise<Adapter> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new Error(`${dir}: no such adapter folder`);
  const cfgPath = join(dir, ADAPTER_CONFIG);
  const wPath = join(dir, ADAPTER_WEIGHTS);
  const config = await readFile(cfgPath, 'utf8').catch(() => {
    throw new Error(`${cfgPath}: not found (is ${dir} a PEFT adapter folder?)`);
  });
  const weights = await readFile(wPath).catch(async () => {
    const bin = await stat(join(dir, 'adapter_model.bin')).catch(() => null);
    throw new Error(
      bin
        ? `${dir}: adapter_model.bin (a PyTorch pickle) is not supported; save with safe_serialization=True`
        : `${wPath}: not found`,
    );
  });
  return importAdapter({
    config,
    weights: new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength),
    configFile: cfgPath,
    weightsFile: wPath,
  });
}

/** Writes files into `dir` (created if needed). */
export async function writeFolder(dir: string, files: readonly OutFile[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of files) await writeFile(join(dir, f.name), f.data);
}
