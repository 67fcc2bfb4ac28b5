// `lora-studio data`: reads a dataset as training would, and reports format, rows, skipped rows, lengths and trained tokens.
import { createWriteStream, type WriteStream } from 'node:fs';
import { openDataFile, readTokenizerFiles } from '../../data/node';
import {
  DataError,
  parseFormat,
  prepareDataset,
  streamDataset,
  TextTokenizer,
  where,
  type DataProgress,
  type DatasetReport,
  type Example,
  type PackedRow,
} from '../../data/index';
import { int, num, str, UsageError, type Command } from '../command';

const USAGE = `  --data FILE          dataset: .jsonl .json .csv .tsv .parquet .txt .md
  --model DIR          model folder with tokenizer.json and tokenizer_config.json
  --format F           text | alpaca | prompt-completion | chat | tokenized (default: detected from the columns)
  --max-len N          truncate examples to N tokens (reported); the packed sequence length with --packing
  --packing            pack several examples per sequence (segment ids and positions restart per example)
  --train-on-prompt    train on prompts and user turns too (default: completions / assistant turns only)
  --eval-split F       hold out this fraction of rows for evaluation (seeded shuffle)
  --eval-data FILE     a separate evaluation file instead of --eval-split
  --seed N             seed of the eval split (default 0)
  --dedup              drop exact duplicate examples
  --dump-tokens OUT    write the result as pre-tokenized JSONL (input_ids, labels; segments when packing)
  --json               print the report as JSON`;

export const data: Command = {
  summary: 'read, tokenize and check a dataset; report rows, skipped rows and token statistics',
  usage: USAGE,
  options: {
    data: { type: 'string' },
    model: { type: 'string' },
    format: { type: 'string' },
    'max-len': { type: 'string' },
    packing: { type: 'boolean' },
    'train-on-prompt': { type: 'boolean' },
    'eval-split': { type: 'string' },
    'eval-data': { type: 'string' },
    seed: { type: 'string' },
    dedup: { type: 'boolean' },
    'dump-tokens': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values) {
    const file = str(values.data, 'data');
    const model = str(values.model, 'model');
    let format;
    try {
      format = values.format === undefined ? undefined : parseFormat(str(values.format, 'format'));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const maxLen = values['max-len'] === undefined ? undefined : int(values['max-len'], 'max-len', 0);
    if (maxLen !== undefined && maxLen < 2)
      throw new UsageError(`--max-len wants at least 2 tokens, got ${maxLen}`);
    const evalSplit = num(values['eval-split'], 'eval-split', 0);
    if (evalSplit < 0 || evalSplit >= 1)
      throw new UsageError(`--eval-split wants a fraction in [0, 1), got ${evalSplit}`);
    const seed = int(values.seed, 'seed', 0);
    const json = values.json === true;
    const packing = values.packing === true;
    if (packing && maxLen === undefined)
      throw new UsageError('--packing needs --max-len (the packed sequence length)');
    const opts = {
      format,
      maxLen,
      trainOnPrompt: values['train-on-prompt'] === true,
      dedupe: values.dedup === true,
      onProgress: !json && process.stderr.isTTY ? showProgress : undefined,
    };
    const started = performance.now();
    try {
      const tok = new TextTokenizer(await readTokenizerFiles(model));
      const { source, name } = await openDataFile(file);
      const dump =
        typeof values['dump-tokens'] === 'string' ? createWriteStream(values['dump-tokens']) : undefined;
      let report: DatasetReport;
      let extra: Record<string, unknown> = {};
      const inMemory = packing || evalSplit > 0 || values['eval-data'] !== undefined;
      if (!inMemory) {
        // Streamed: a large file is never held whole; examples go to the dump as they come.
        const s = await streamDataset(source, name, tok, opts);
        for await (const e of s.examples) if (dump) await writeLine(dump, exampleJson(e));
        report = s.report();
      } else {
        const evalFile =
          typeof values['eval-data'] === 'string' ? await openDataFile(values['eval-data']) : undefined;
        const p = await prepareDataset(source, name, tok, {
          ...opts,
          packing,
          evalSplit,
          seed,
          evalSource: evalFile && { source: evalFile.source, name: evalFile.name },
        });
        report = p.report;
        extra = {
          trainExamples: p.train.length,
          evalExamples: p.eval.length,
          ...(p.evalReport && { evalReport: p.evalReport }),
          ...(p.trainPacked && { packing: packingStats(p.trainPacked, p.evalPacked ?? [], maxLen ?? 0) }),
        };
        if (dump) {
          if (p.trainPacked) {
            for (const r of p.trainPacked) await writeLine(dump, packedJson(r, 'train'));
            for (const r of p.evalPacked ?? []) await writeLine(dump, packedJson(r, 'eval'));
          } else {
            for (const e of p.train) await writeLine(dump, exampleJson(e, 'train'));
            for (const e of p.eval) await writeLine(dump, exampleJson(e, 'eval'));
          }
        }
      }
      if (dump)
        await new Promise<void>((res, rej) => dump.end((err?: Error | null) => (err ? rej(err) : res())));
      if (!json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      const seconds = (performance.now() - started) / 1000;
      const template = tok.hasOwnTemplate
        ? "the model's chat_template"
        : 'the plain template (the model has none)';
      if (json) console.log(JSON.stringify({ ...report, ...extra, template, seconds }, null, 2));
      else
        printReport(report, extra, {
          template,
          seconds,
          maxLen,
          dumpTo: values['dump-tokens'] as string | undefined,
        });
      return 0;
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      if (!json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      if (json) {
        console.log(JSON.stringify({ error: e.message, skipped: e.skipped }, null, 2));
        return 1;
      }
      for (const s of e.skipped) console.error(`  skipped ${where(s, true)}: ${s.reason}`);
      console.error(`error: ${e.message}`);
      return 1;
    }
  },
};

function showProgress(p: DataProgress): void {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const pct = p.totalBytes ? ` ${((100 * p.bytesRead) / p.totalBytes).toFixed(0)}%` : '';
  process.stderr.write(
    `\r\x1b[K${p.phase}${pct} (${mb(p.bytesRead)} MB), ${p.rows.toLocaleString('en-US')} rows`,
  );
}

async function writeLine(out: WriteStream, line: string): Promise<void> {
  if (!out.write(`${line}\n`)) await new Promise<void>((res) => out.once('drain', () => res()));
}

function exampleJson(e: Example, split?: string): string {
  return JSON.stringify({
    row: e.row,
    ...(split && { split }),
    input_ids: Array.from(e.inputIds),
    labels: Array.from(e.labels),
  });
}

function packedJson(r: PackedRow, split: string): string {
  return JSON.stringify({
    split,
    input_ids: Array.from(r.inputIds),
    labels: Array.from(r.labels),
    position_ids: Array.from(r.positionIds),
    segment_ids: Array.from(r.segmentIds),
  });
}

function packingStats(train: PackedRow[], evalRows: PackedRow[], maxLen: number) {
  const tokens = train.reduce((n, r) => n + r.inputIds.length, 0);
  return {
    trainSequences: train.length,
    evalSequences: evalRows.length,
    sequenceLength: maxLen,
    fill: train.length ? tokens / (train.length * maxLen) : 0,
  };
}

function printReport(
  r: DatasetReport,
  extra: Record<string, unknown>,
  o: { template: string; seconds: number; maxLen?: number; dumpTo?: string },
): void {
  const n = (x: number) => x.toLocaleString('en-US');
  const lines = [
    `data: ${r.file} (${r.kind}${r.bytes !== undefined ? `, ${n(r.bytes)} bytes` : ''})`,
    `format: ${r.format} (${r.detected ? 'detected from the columns' : 'set by --format'})`,
  ];
  if (r.format === 'chat' || r.format === 'alpaca') lines.push(`template: ${o.template}`);
  lines.push(
    `rows: ${n(r.rowsRead)} read, ${n(r.rowsUsed)} used, ${n(r.skipped.length)} skipped` +
      (r.duplicateRows.length ? `, ${n(r.duplicateRows.length)} duplicates dropped` : ''),
  );
  for (const s of r.skipped) lines.push(`  skipped ${where(s, r.lineOriented)}: ${s.reason}`);
  const L = r.lengths;
  lines.push(
    `tokens per example: min ${n(L.min)}, median ${n(L.median)}, p95 ${n(L.p95)}, max ${n(L.max)}, total ${n(L.total)}`,
    `trained tokens: ${n(r.trainedTokens)} (${L.total ? ((100 * r.trainedTokens) / L.total).toFixed(1) : '0'}% of all tokens)`,
    `truncated rows: ${n(r.truncatedRows)}${o.maxLen !== undefined ? ` (--max-len ${o.maxLen})` : ''}`,
  );
  if (extra.evalExamples !== undefined)
    lines.push(`split: ${n(extra.trainExamples as number)} train, ${n(extra.evalExamples as number)} eval`);
  const pk = extra.packing as ReturnType<typeof packingStats> | undefined;
  if (pk)
    lines.push(
      `packing: ${n(pk.trainSequences)} train + ${n(pk.evalSequences)} eval sequences of ≤ ${n(pk.sequenceLength)} tokens, ${(100 * pk.fill).toFixed(1)}% filled`,
    );
  if (o.dumpTo) lines.push(`tokens written to ${o.dumpTo}`);
  const mb = r.bytes !== undefined ? `, ${(r.bytes / 1e6 / o.seconds).toFixed(1)} MB/s` : '';
  lines.push(`time: ${o.seconds.toFixed(2)} s (${n(Math.round(r.rowsRead / o.seconds))} rows/s${mb})`);
  console.log(lines.join('\n'));
}
