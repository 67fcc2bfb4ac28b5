// Node glue shared by the commands: open a model (folder or Hub id), its tokenizer, an adapter, a dataset.
import type { DatasetFormat, PreparedDataset, TextTokenizer as Tok } from '../data/index';
import { parseFormat, prepareDataset, TextTokenizer } from '../data/index';
import { openDataFile } from '../data/node';
import type { Adapter } from '../lora/config';
import { checkAdapter } from '../lora/adapter-io';
import { readAdapterDir } from '../lora/fs-node';
import type { LinearModule } from '../model/spec';
import { openModelSource } from '../model/sources/node';
import type { ModelSource } from '../model/sources/source';
import { readOptionalText } from '../model/sources/source';
import { UsageError } from './command';

export async function openModel(model: string, quiet = false): Promise<ModelSource> {
  let last = '';
  return openModelSource(model, {
    onProgress: quiet
      ? undefined
      : (p: { file: string; loaded: number; total?: number }) => {
          const line = `downloading ${p.file} ${(p.loaded / 1e6).toFixed(1)}${p.total ? `/${(p.total / 1e6).toFixed(1)}` : ''} MB`;
          if (line !== last && process.stderr.isTTY) process.stderr.write(`\r${line}`);
          last = line;
        },
  });
}

/** The model's tokenizer, or null when it ships none (pre-tokenized data still works then). */
export async function openTokenizer(source: ModelSource): Promise<Tok | null> {
  const tokenizerJson = await readOptionalText(source, 'tokenizer.json');
  if (!tokenizerJson) return null;
  const tokenizerConfig = await readOptionalText(source, 'tokenizer_config.json');
  const chatTemplate = await readOptionalText(source, 'chat_template.jinja');
  return new TextTokenizer({ tokenizerJson, tokenizerConfig, chatTemplate });
}

/** A PEFT adapter folder, checked against the model: a key that matches no module or a wrong shape names itself. */
export async function openAdapter(dir: string, modules: readonly LinearModule[]): Promise<Adapter> {
  const adapter = await readAdapterDir(dir);
  const { missing } = checkAdapter(adapter, modules);
  if (missing.length) {
    console.error(
      `warning: ${dir} targets ${missing.length} module(s) it has no weights for: ${missing.slice(0, 5).join(', ')}`,
    );
  }
  return adapter;
}

export interface DataFlags {
  format?: string;
  maxLen?: number;
  trainOnPrompt?: boolean;
  packing?: boolean;
  evalSplit?: number;
  evalData?: string;
  seed?: number;
}

export async function openDataset(
  file: string,
  tok: Tok | null,
  vocabSize: number,
  f: DataFlags,
): Promise<PreparedDataset> {
  let format: DatasetFormat | undefined;
  try {
    format = f.format === undefined ? undefined : parseFormat(f.format);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (f.packing && f.maxLen === undefined)
    throw new UsageError('--packing needs --max-len (the packed sequence length)');
  const { source, name } = await openDataFile(file);
  const evalSource = f.evalData ? await openDataFile(f.evalData) : undefined;
  const data = await prepareDataset(source, name, tok, {
    format,
    maxLen: f.maxLen,
    vocabSize,
    trainOnPrompt: f.trainOnPrompt,
    packing: f.packing,
    evalSplit: f.evalSplit,
    evalSource,
    seed: f.seed,
  });
  for (const s of data.report.skipped.slice(0, 20))
    console.error(`skipped ${file} ${describeRow(s)}: ${s.reason}`);
  if (data.report.skipped.length > 20)
    console.error(`… and ${data.report.skipped.length - 20} more skipped rows`);
  return data;
}

function describeRow(s: { row?: number; line?: number }): string {
  return s.line !== undefined ? `row ${s.row ?? '?'} (line ${s.line})` : `row ${s.row ?? '?'}`;
}
