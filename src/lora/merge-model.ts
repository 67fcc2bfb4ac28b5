// Merging an adapter into a model read through a ModelSource (Node folder, Hub cache, browser File list).
import { openCheckpoint } from '../model/load';
import type { ModelSource } from '../model/sources/source';
import type { OutFile } from './adapter-io';
import { checkAdapter } from './adapter-io';
import type { Adapter } from './config';
import type { CheckpointTensor, MergeOptions } from './merge';
import { COPIED_FILES, mergedModelFiles } from './merge';

/**
 * The merged model's folder as files: the checkpoint is checked against its architecture, the adapter against the
 * model's linear layers (a key that matches no module, or a shape that does not fit, throws naming it).
 * Holds the whole checkpoint in memory once, plus the merged copy.
 */
export async function mergeModelFromSource(
  source: ModelSource,
  adapter: Adapter,
  options: MergeOptions = {},
): Promise<OutFile[]> {
  const cp = await openCheckpoint(source);
  checkAdapter(adapter, cp.layout.modules);
  const tensors: CheckpointTensor[] = [];
  for (const [name, t] of cp.tensors) {
    tensors.push({ name, dtype: t.info.dtype, shape: [...t.info.shape], data: await t.file.bytes(name) });
  }
  const present = await source.list();
  const extra: OutFile[] = [];
  for (const f of COPIED_FILES) {
    if (!present.includes(f)) continue;
    extra.push({ name: f, data: await source.readRange(f, 0, await source.size(f)) });
  }
  return mergedModelFiles({
    configText: await source.readText('config.json'),
    tensors,
    modules: cp.layout.modules,
    adapter,
    extra,
    options,
  });
}
