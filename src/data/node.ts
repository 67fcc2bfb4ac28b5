// Node-only file access for the data pipeline: data files as Blobs (streamed from disk) and tokenizer files as text.
import { existsSync, openAsBlob, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { TokenizerFiles } from './tokenizer';
import { DataError } from './types';

/** A data file as a Blob backed by the file (nothing is read until the stream is pulled). */
export async function openDataFile(path: string): Promise<{ source: Blob; name: string }> {
  if (!existsSync(path)) throw new DataError(`${path}: no such file`);
  if (statSync(path).isDirectory()) throw new DataError(`${path}: is a directory, not a data file`);
  return { source: await openAsBlob(path), name: basename(path) };
}

/** tokenizer.json, tokenizer_config.json and chat_template.jinja (when present) of a model folder. */
export async function readTokenizerFiles(modelDir: string): Promise<TokenizerFiles> {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory())
    throw new DataError(
      `${modelDir}: not a model folder (want a folder with tokenizer.json and tokenizer_config.json)`,
    );
  const tj = join(modelDir, 'tokenizer.json');
  if (!existsSync(tj)) throw new DataError(`${modelDir}: no tokenizer.json in the model folder`);
  const files: TokenizerFiles = { tokenizerJson: await readFile(tj, 'utf8') };
  const tc = join(modelDir, 'tokenizer_config.json');
  if (existsSync(tc)) files.tokenizerConfig = await readFile(tc, 'utf8');
  const ct = join(modelDir, 'chat_template.jinja');
  if (existsSync(ct)) files.chatTemplate = await readFile(ct, 'utf8');
  return files;
}
