// The dataset pipeline: read → detect format → normalize → tokenize and mask → truncate, streamed, with a report.
import type { ByteSource } from './bytes';
import { encodeSample, type EncodeOptions } from './encode';
import { detectFormat, normalize } from './formats';
import { packExamples } from './pack';
import { lineOriented, openRecords, type FileKind } from './readers';
import { dedupe, exampleKey, splitTrainEval } from './split';
import { LengthList, type LengthStats } from './stats';
import type { TextTokenizer } from './tokenizer';
import {
  DataError,
  where,
  type DataProgress,
  type DatasetFormat,
  type Example,
  type PackedRow,
  type RawRecord,
  type SkippedRow,
} from './types';

export interface StreamOptions extends EncodeOptions {
  /** Force a format instead of detecting it from the columns. */
  format?: DatasetFormat;
  /** Drop exact duplicates (same tokens and mask) as they stream by. */
  dedupe?: boolean;
  onProgress?: (p: DataProgress) => void;
}

export interface DatasetReport {
  file: string;
  kind: FileKind;
  format: DatasetFormat;
  /** False when --format forced it. */
  detected: boolean;
  /** Records seen, good or bad (blank lines are not records). */
  rowsRead: number;
  rowsUsed: number;
  skipped: SkippedRow[];
  /** Rows dropped as exact duplicates of an earlier row (with dedupe). */
  duplicateRows: number[];
  truncatedRows: number;
  /** Labels that are not -100, i.e. tokens the loss is taken on. */
  trainedTokens: number;
  lengths: LengthStats;
  bytes?: number;
  /** Whether positions are line numbers (JSONL, CSV, text) rather than row numbers (JSON, Parquet). */
  lineOriented: boolean;
}

/** How many leading records decide the format (a few bad ones do not). */
const DETECT_ROWS = 64;

export interface DatasetStream {
  /** The format is known as soon as the stream is opened. */
  format: DatasetFormat;
  examples: AsyncGenerator<Example>;
  /** Final once `examples` is exhausted; it throws a DataError then if no row was usable. */
  report: () => DatasetReport;
}

/** Opens a dataset as a stream of examples; memory holds one record at a time plus the lengths. */
export async function streamDataset(
  src: ByteSource,
  file: string,
  tok: TextTokenizer | null,
  o: StreamOptions = {},
): Promise<DatasetStream> {
  let bytesRead = 0;
  let rowsRead = 0;
  let lastTick = 0;
  const tick = (phase: DataProgress['phase'], force = false) => {
    if (!o.onProgress) return;
    const now = Date.now();
    if (!force && now - lastTick < 100) return;
    lastTick = now;
    o.onProgress({ phase, bytesRead, totalBytes: opened.totalBytes, rows: rowsRead });
  };
  const opened = await openRecords(src, file, {
    onBytes: (n) => {
      bytesRead = n;
      tick('read');
    },
  });
  const lines = lineOriented(opened.kind);
  const head: RawRecord[] = [];
  for (;;) {
    if (head.length >= DETECT_ROWS) break;
    const r = await opened.records.next();
    if (r.done) break;
    head.push(r.value);
  }
  if (!head.length) throw new DataError(`${file}: no rows`);
  const format =
    o.format ??
    (() => {
      try {
        return detectFormat(
          head.filter((r) => r.error === undefined).map((r) => r.value),
          file,
        );
      } catch (e) {
        if (e instanceof DataError && head.every((r) => r.error !== undefined))
          throw new DataError(
            `${file}: no readable row in the first ${head.length} (${head[0].error} at ${where(head[0], lines)})`,
            head.map(skip),
          );
        throw e;
      }
    })();

  const skipped: SkippedRow[] = [];
  const duplicateRows: number[] = [];
  const lengths = new LengthList();
  const seen = o.dedupe ? new Set<string>() : undefined;
  let truncatedRows = 0;
  let trainedTokens = 0;
  let finished = false;

  async function* all(): AsyncGenerator<RawRecord> {
    yield* head;
    yield* opened.records;
  }
  async function* examples(): AsyncGenerator<Example> {
    for await (const rec of all()) {
      rowsRead++;
      tick('tokenize');
      if (rec.error !== undefined) {
        skipped.push(skip(rec));
        continue;
      }
      const sample = normalize(rec.value, format);
      if ('error' in sample) {
        skipped.push({ ...loc(rec), reason: sample.error });
        continue;
      }
      const enc = encodeSample(tok, sample, rec.row, o);
      if ('error' in enc) {
        skipped.push({ ...loc(rec), reason: enc.error });
        continue;
      }
      if (seen) {
        const k = exampleKey(enc.example);
        if (seen.has(k)) {
          duplicateRows.push(rec.row);
          continue;
        }
        seen.add(k);
      }
      if (enc.truncated) truncatedRows++;
      lengths.push(enc.example.inputIds.length);
      for (const l of enc.example.labels) if (l !== -100) trainedTokens++;
      yield enc.example;
    }
    finished = true;
    tick('tokenize', true);
  }
  const report = (): DatasetReport => {
    const r: DatasetReport = {
      file,
      kind: opened.kind,
      format,
      detected: o.format === undefined,
      rowsRead,
      rowsUsed: lengths.length,
      skipped,
      duplicateRows,
      truncatedRows,
      trainedTokens,
      lengths: lengths.stats(),
      bytes: opened.totalBytes,
      lineOriented: lines,
    };
    if (finished && r.rowsUsed === 0)
      throw new DataError(`${file}: no usable row: ${rowsRead} read as ${format}, all skipped`, skipped);
    return r;
  };
  return { format, examples: examples(), report };
}

function loc(r: RawRecord): { row: number; line?: number } {
  return r.line === undefined ? { row: r.row } : { row: r.row, line: r.line };
}
function skip(r: RawRecord): SkippedRow {
  return { ...loc(r), reason: r.error ?? 'unreadable' };
}

export interface PrepareOptions extends StreamOptions {
  /** Fraction of rows held out for evaluation by a seeded shuffle (ignored when `evalSource` is given). */
  evalSplit?: number;
  /** A separate evaluation file (any format). */
  evalSource?: { source: ByteSource; name: string };
  seed?: number;
  /** Pack examples into sequences of `maxLen` tokens (maxLen required). */
  packing?: boolean;
}

export interface PreparedDataset {
  train: Example[];
  eval: Example[];
  /** With packing: the packed sequences of each split. */
  trainPacked?: PackedRow[];
  evalPacked?: PackedRow[];
  report: DatasetReport;
  evalReport?: DatasetReport;
}

async function collect(src: ByteSource, name: string, tok: TextTokenizer | null, o: StreamOptions) {
  const s = await streamDataset(src, name, tok, o);
  const out: Example[] = [];
  for await (const e of s.examples) out.push(e);
  return { examples: out, report: s.report() };
}

/** The whole dataset in memory, split and (optionally) packed: what `train` and `eval` consume. */
export async function prepareDataset(
  src: ByteSource,
  name: string,
  tok: TextTokenizer | null,
  o: PrepareOptions = {},
): Promise<PreparedDataset> {
  if (o.packing && !o.maxLen) throw new DataError('packing needs a maximum sequence length (--max-len)');
  const main = await collect(src, name, tok, { ...o, dedupe: false });
  let train = main.examples;
  if (o.dedupe) {
    const d = dedupe(train);
    train = d.kept;
    main.report.duplicateRows = d.duplicateRows;
  }
  let evalSet: Example[] = [];
  let evalReport: DatasetReport | undefined;
  if (o.evalSource) {
    const ev = await collect(o.evalSource.source, o.evalSource.name, tok, { ...o, format: undefined });
    evalSet = ev.examples;
    evalReport = ev.report;
  } else if (o.evalSplit) {
    const s = splitTrainEval(train, o.evalSplit, o.seed ?? 0);
    train = s.train;
    evalSet = s.eval;
  }
  const out: PreparedDataset = { train, eval: evalSet, report: main.report, evalReport };
  if (o.packing && o.maxLen) {
    out.trainPacked = packExamples(train, o.maxLen);
    out.evalPacked = packExamples(evalSet, o.maxLen);
  }
  return out;
}
