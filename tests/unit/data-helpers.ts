// Test helpers for the data pipeline: the fixture tokenizers, temp files, a tiny Parquet writer, and collecting a stream.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TextTokenizer, streamDataset, type StreamOptions } from '../../src/data/index';
import type { DatasetReport, Example } from '../../src/data/index';
import { fixture } from '../helpers/fixtures';

export function fixtureTokenizer(model: 'stories260K-hf' | 'gpt2-tiny-random'): TextTokenizer {
  const dir = fixture(`models/${model}/`);
  return new TextTokenizer({
    tokenizerJson: readFileSync(`${dir}tokenizer.json`, 'utf8'),
    tokenizerConfig: readFileSync(`${dir}tokenizer_config.json`, 'utf8'),
  });
}

let tmp: string | undefined;
/** Writes a file under a fresh temp folder and returns its path. */
export function tempFile(name: string, content: string | Uint8Array): string {
  tmp ??= mkdtempSync(join(tmpdir(), 'lora-data-'));
  const p = join(tmp, name);
  writeFileSync(p, content);
  return p;
}

/** Bytes as a stream of tiny chunks, so every reader is exercised across chunk boundaries. */
export async function* trickle(bytes: Uint8Array, size = 7): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

export async function readAllExamples(
  src: Blob | Uint8Array | AsyncIterable<Uint8Array>,
  name: string,
  tok: TextTokenizer,
  o: StreamOptions = {},
): Promise<{ examples: Example[]; report: DatasetReport }> {
  const s = await streamDataset(src, name, tok, o);
  const examples: Example[] = [];
  for await (const e of s.examples) examples.push(e);
  return { examples, report: s.report() };
}

/** The runs of consecutive trained tokens (labels != -100) of an example. */
export function trainedRuns(e: Example): number[][] {
  const runs: number[][] = [];
  let cur: number[] | undefined;
  for (let t = 0; t < e.labels.length; t++) {
    if (e.labels[t] === -100) cur = undefined;
    else {
      if (!cur) runs.push((cur = []));
      cur.push(e.labels[t]);
    }
  }
  return runs;
}

// --- A minimal Parquet writer (required UTF-8 string columns, PLAIN, uncompressed, one row group), for tests only.

class Compact {
  bytes: number[] = [];
  private last: number[] = [0];
  varint(n: bigint): void {
    while (n >= 0x80n) {
      this.bytes.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.bytes.push(Number(n));
  }
  private header(id: number, type: number): void {
    const delta = id - this.last[this.last.length - 1];
    this.bytes.push((delta << 4) | type);
    this.last[this.last.length - 1] = id;
  }
  int(id: number, v: number, type = 5): void {
    this.header(id, type);
    const z = BigInt(v);
    this.varint((z << 1n) ^ (z >> 63n));
  }
  binary(id: number, s: string): void {
    this.header(id, 8);
    const b = new TextEncoder().encode(s);
    this.varint(BigInt(b.length));
    this.bytes.push(...b);
  }
  begin(id: number): void {
    this.header(id, 12);
    this.last.push(0);
  }
  end(): void {
    this.bytes.push(0);
    this.last.pop();
  }
  list(id: number, type: number, n: number): void {
    this.header(id, 9);
    this.bytes.push((n << 4) | type);
  }
  elem(): void {
    this.last.push(0);
  }
}

export function writeParquet(columns: string[], rows: string[][]): Uint8Array {
  const out: number[] = [...new TextEncoder().encode('PAR1')];
  const chunks: { offset: number; size: number }[] = [];
  columns.forEach((_, c) => {
    const data: number[] = [];
    for (const r of rows) {
      const b = new TextEncoder().encode(r[c]);
      data.push(b.length & 255, (b.length >> 8) & 255, (b.length >> 16) & 255, b.length >>> 24, ...b);
    }
    const h = new Compact();
    h.int(1, 0); // DATA_PAGE
    h.int(2, data.length);
    h.int(3, data.length);
    h.begin(5);
    h.int(1, rows.length);
    h.int(2, 0); // PLAIN
    h.int(3, 3); // RLE
    h.int(4, 3);
    h.end();
    h.bytes.push(0);
    chunks.push({ offset: out.length, size: h.bytes.length + data.length });
    out.push(...h.bytes, ...data);
  });
  const m = new Compact();
  m.int(1, 1);
  m.list(2, 12, columns.length + 1);
  m.elem();
  m.binary(4, 'schema');
  m.int(5, columns.length);
  m.end();
  for (const name of columns) {
    m.elem();
    m.int(1, 6); // BYTE_ARRAY
    m.int(3, 0); // REQUIRED
    m.binary(4, name);
    m.int(6, 0); // UTF8
    m.end();
  }
  m.int(3, rows.length, 6);
  m.list(4, 12, 1);
  m.elem();
  m.list(1, 12, columns.length);
  columns.forEach((name, c) => {
    m.elem();
    m.int(2, chunks[c].offset, 6);
    m.begin(3);
    m.int(1, 6);
    m.list(2, 5, 1);
    m.varint(0n); // PLAIN (zigzag 0)
    m.list(3, 8, 1);
    const nb = new TextEncoder().encode(name);
    m.varint(BigInt(nb.length));
    m.bytes.push(...nb);
    m.int(4, 0);
    m.int(5, rows.length, 6);
    m.int(6, chunks[c].size, 6);
    m.int(7, chunks[c].size, 6);
    m.int(9, chunks[c].offset, 6);
    m.end();
    m.end();
  });
  m.int(
    2,
    chunks.reduce((n, x) => n + x.size, 0),
    6,
  );
  m.int(3, rows.length, 6);
  m.end();
  m.end();
  const len = m.bytes.length;
  out.push(
    ...m.bytes,
    len & 255,
    (len >> 8) & 255,
    (len >> 16) & 255,
    len >>> 24,
    ...new TextEncoder().encode('PAR1'),
  );
  return Uint8Array.from(out);
}
