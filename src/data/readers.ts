// Readers for every supported file kind (jsonl, json, csv/tsv, parquet, txt/md), all streamed into RawRecords.
import Papa from 'papaparse';
import { decodeUtf8, looksBinary, peek, sourceSize, type ByteSource } from './bytes';
import { readJsonArray } from './json-stream';
import { isBlank, splitLines } from './lines';
import { isParquetMagic, readParquet } from './parquet';
import { DataError, type RawRecord } from './types';

/** Bytes looked at before reading: enough to sniff binary content and JSON Lines in a .json file. */
const PEEK = 1 << 16;

export type FileKind = 'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet' | 'text';

const EXTENSIONS: Record<string, FileKind> = {
  jsonl: 'jsonl',
  ndjson: 'jsonl',
  json: 'json',
  csv: 'csv',
  tsv: 'tsv',
  parquet: 'parquet',
  txt: 'text',
  text: 'text',
  md: 'text',
  markdown: 'text',
};
export const SUPPORTED_EXTENSIONS = Object.keys(EXTENSIONS).map((e) => `.${e}`);

/** The kind of file its name says it is; an unknown extension is an error that lists the known ones. */
export function fileKind(name: string): FileKind {
  const m = /\.([A-Za-z0-9]+)$/.exec(name);
  const kind = m ? EXTENSIONS[m[1].toLowerCase()] : undefined;
  if (!kind)
    throw new DataError(
      `${name}: unknown file extension${m ? ` ".${m[1]}"` : ' (none)'}; supported: ${SUPPORTED_EXTENSIONS.join(', ')}`,
    );
  return kind;
}

/** True for kinds whose positions are best given as line numbers. */
export function lineOriented(kind: FileKind): boolean {
  return kind === 'jsonl' || kind === 'csv' || kind === 'tsv' || kind === 'text';
}

export interface ReadOptions {
  onBytes?: (bytesRead: number) => void;
}

export interface OpenedRecords {
  kind: FileKind;
  totalBytes?: number;
  records: AsyncGenerator<RawRecord>;
}

/**
 * Opens a data file: checks that it is not empty or binary, picks the reader from the extension (or from the
 * Parquet magic, or JSON Lines content in a .json file), and returns its records as a stream.
 */
export async function openRecords(
  src: ByteSource,
  name: string,
  o: ReadOptions = {},
): Promise<OpenedRecords> {
  let kind = fileKind(name);
  const totalBytes = sourceSize(src);
  const p = await peek(src, PEEK);
  const head = p.head;
  if (head.length === 0) throw new DataError(`${name}: the file is empty (0 bytes): no rows`);
  if (isParquetMagic(head)) kind = 'parquet';
  else if (kind === 'parquet')
    throw new DataError(`${name}: not a Parquet file (it does not start with "PAR1")`);
  else if (head[0] === 0x1f && head[1] === 0x8b)
    throw new DataError(`${name}: the file is gzip-compressed; decompress it first`);
  else if (looksBinary(head))
    throw new DataError(
      `${name}: this looks like a binary file (NUL or control bytes near the start), not ${kind} text`,
    );
  else if (
    /^\s*$/.test(new TextDecoder().decode(head)) &&
    (totalBytes !== undefined ? totalBytes <= head.length : head.length < PEEK)
  )
    throw new DataError(`${name}: the file holds only whitespace: no rows`);
  if (kind === 'json' && looksLikeJsonLines(head)) kind = 'jsonl';
  const onBytes = o.onBytes;
  const records =
    kind === 'jsonl'
      ? readJsonl(p.source, onBytes)
      : kind === 'json'
        ? readJsonArray(p.source, name, onBytes)
        : kind === 'csv' || kind === 'tsv'
          ? readDelimited(p.source, name, kind === 'tsv' ? '\t' : ',', onBytes)
          : kind === 'parquet'
            ? readParquet(p.source, name, onBytes)
            : readText(p.source, onBytes);
  return { kind, totalBytes, records };
}

/** A .json file whose first line is a whole JSON object and which has more lines is really JSON Lines. */
function looksLikeJsonLines(head: Uint8Array): boolean {
  let s = 0;
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) s = 3;
  if (head[s] !== 0x7b) return false;
  const nl = head.indexOf(0x0a, s);
  if (nl < 0) return false;
  const dec = decodeUtf8(head.subarray(s, nl));
  if ('error' in dec) return false;
  try {
    const v: unknown = JSON.parse(dec.text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  } catch {
    return false;
  }
  return !isBlank(head.subarray(nl + 1));
}

/** JSON Lines: one object per non-blank line; a bad line is a record with an error, never the end of the file. */
async function* readJsonl(src: ByteSource, onBytes?: (n: number) => void): AsyncGenerator<RawRecord> {
  let row = 0;
  for await (const { bytes, line } of splitLines(src, { onBytes })) {
    if (isBlank(bytes)) continue;
    row++;
    const dec = decodeUtf8(bytes);
    if ('error' in dec) {
      yield { row, line, error: dec.error };
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(dec.text);
    } catch (e) {
      yield { row, line, error: `not valid JSON: ${(e as Error).message}` };
      continue;
    }
    yield { row, line, value };
  }
}

/** CSV/TSV with a header row; records are cut at newlines outside quotes and each parsed by papaparse. */
async function* readDelimited(
  src: ByteSource,
  name: string,
  delimiter: string,
  onBytes?: (n: number) => void,
): AsyncGenerator<RawRecord> {
  let header: string[] | undefined;
  let row = 0;
  for await (const { bytes, line } of splitLines(src, { quotes: true, onBytes })) {
    if (isBlank(bytes)) continue;
    const dec = decodeUtf8(bytes);
    if ('error' in dec) {
      if (!header) throw new DataError(`${name}: line ${line}: the header row is not UTF-8 (${dec.error})`);
      yield { row: ++row, line, error: dec.error };
      continue;
    }
    const parsed = Papa.parse<string[]>(dec.text, { delimiter, header: false, skipEmptyLines: false });
    const fields = parsed.data[0] ?? [];
    if (!header) {
      header = fields.map((f) => f.trim());
      if (header.some((h) => h === ''))
        throw new DataError(
          `${name}: line ${line}: the header row has an empty column name (${JSON.stringify(header)})`,
        );
      continue;
    }
    row++;
    const err = parsed.errors[0];
    if (err) {
      yield { row, line, error: `malformed ${delimiter === '\t' ? 'TSV' : 'CSV'} record: ${err.message}` };
      continue;
    }
    if (fields.length !== header.length) {
      yield { row, line, error: `has ${fields.length} fields, the header has ${header.length}` };
      continue;
    }
    const value: Record<string, string> = {};
    header.forEach((h, i) => (value[h] = fields[i]));
    yield { row, line, value };
  }
  if (!header) throw new DataError(`${name}: the file is empty: no header row and no rows`);
}

/** Plain text: documents are separated by blank lines; each is `{ text }` with its inner newlines kept. */
async function* readText(src: ByteSource, onBytes?: (n: number) => void): AsyncGenerator<RawRecord> {
  let row = 0;
  let lines: string[] = [];
  let startLine = 0;
  let error: string | undefined;
  const flush = (): RawRecord | undefined => {
    if (!lines.length && !error) return undefined;
    const rec: RawRecord = error
      ? { row: ++row, line: startLine, error }
      : { row: ++row, line: startLine, value: { text: lines.join('\n') } };
    lines = [];
    error = undefined;
    return rec;
  };
  for await (const { bytes, line } of splitLines(src, { onBytes })) {
    if (isBlank(bytes)) {
      const r = flush();
      if (r) yield r;
      continue;
    }
    if (!lines.length && !error) startLine = line;
    const dec = decodeUtf8(bytes);
    if ('error' in dec) error ??= `line ${line}: ${dec.error}`;
    else lines.push(dec.text);
  }
  const r = flush();
  if (r) yield r;
}
