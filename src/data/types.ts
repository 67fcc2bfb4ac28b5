// Shared shapes of the data pipeline: raw records, normalized samples, tokenized examples, skipped rows, errors.

/** The dataset formats we understand; `tokenized` rows already hold token ids. */
export const FORMATS = ['text', 'alpaca', 'prompt-completion', 'chat', 'tokenized'] as const;
export type DatasetFormat = (typeof FORMATS)[number];

/** One record as a reader produced it, before its format is known. */
export interface RawRecord {
  /** 1-based ordinal among the file's records (JSONL: non-blank lines; CSV: data rows; JSON: array elements). */
  row: number;
  /** 1-based physical line where the record starts, where the file has lines (all but parquet). */
  line?: number;
  /** The parsed value (an object for tabular/JSON formats, `{ text }` for plain text). */
  value?: unknown;
  /** Set instead of `value` when the record could not be read (bad JSON, invalid UTF-8, ...). */
  error?: string;
}

/** A row that was left out, and why. */
export interface SkippedRow {
  row: number;
  line?: number;
  reason: string;
}

export type Role = 'system' | 'user' | 'assistant';
export interface ChatMessage {
  role: Role;
  content: string;
}

/** A row normalized to what the tokenizer needs. */
export type Sample =
  | { kind: 'text'; text: string }
  | { kind: 'prompt-completion'; prompt: string; completion: string }
  | { kind: 'chat'; messages: ChatMessage[] }
  | { kind: 'tokenized'; inputIds: number[]; labels?: number[] };

/** One tokenized training example; labels are unshifted (Transformers convention), -100 = not trained. */
export interface Example {
  inputIds: Int32Array;
  labels: Int32Array;
  /** Where the example came from, for reports and the token dump. */
  row: number;
}

/** A packed sequence: several examples back to back; positions restart and segment ids change per example. */
export interface PackedRow {
  inputIds: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
  segmentIds: Int32Array;
}

/** Progress of a long read/tokenize; `totalBytes` is absent for streams of unknown length. */
export interface DataProgress {
  phase: 'read' | 'tokenize';
  bytesRead: number;
  totalBytes?: number;
  rows: number;
}

/** A dataset problem the user must fix (bad file, no usable rows, unknown format); printed as it is. */
export class DataError extends Error {
  constructor(
    message: string,
    /** Rows skipped before the error was found, so a caller can still list them. */
    readonly skipped: SkippedRow[] = [],
  ) {
    super(message);
    this.name = 'DataError';
  }
}

/** "line 6" for line-oriented files, "row 12 (line 40)" for JSON arrays, "row 7" for parquet. */
export function where(r: { row: number; line?: number }, lineOriented: boolean): string {
  if (r.line === undefined) return `row ${r.row}`;
  if (lineOriented) return `line ${r.line}`;
  return `row ${r.row} (line ${r.line})`;
}
