// Node only: turns what the user typed (a folder path or a Hub id) into a ModelSource, downloading into the HF cache.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { FolderSource } from './folder';
import type { HubOptions } from './hub';
import { openHubModel, parseHubId } from './hub';
import { NodeHubCache } from './hub-cache-node';
import type { ModelSource } from './source';

export interface OpenModelOptions extends Omit<HubOptions, 'cache'> {
  /** Hub cache root (default `$HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`). */
  cacheDir?: string;
}

/** A folder path if one exists there; otherwise a Hub id `org/name` or `org/name@revision`. */
export async function openModelSource(model: string, o: OpenModelOptions = {}): Promise<ModelSource> {
  if (existsSync(model)) {
    if (!statSync(model).isDirectory()) throw new Error(`${model}: not a folder (give the model's folder)`);
    return new FolderSource(resolve(model), model);
  }
  const id = parseHubId(model);
  if (!id) {
    throw new Error(`${model}: no such folder, and not a Hub id (org/name or org/name@revision)`);
  }
  return openHubModel(id.repo, {
    ...o,
    revision: o.revision ?? id.revision,
    cache: new NodeHubCache(o.cacheDir),
  });
}
