// Parquet rows via hyparquet, one row group at a time (random access through Blob.slice, so big files are not loaded whole).
import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer } from 'hyparquet';
import { readAll, type ByteSource } from './bytes';
import { DataError, type RawRecord } from './types';

function asyncBuffer(src: Blob | Uint8Array): AsyncBuffer {
  if (src instanceof Uint8Array)
    return { byteLength: src.byteLength, slice: (s, e) => src.slice(s, e).buffer as ArrayBuffer };
  return { byteLength: src.size, slice: (s, e) => src.slice(s, e).arrayBuffer() };
}

/** hyparquet gives BigInt for INT64 and typed arrays for lists of numbers; rows should look like parsed JSON. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView))
    return Array.from(v as unknown as ArrayLike<number | bigint>, plain);
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x);
    return o;
  }
  return v;
}

export async function* readParquet(
  src: ByteSource,
  file: string,
  onBytes?: (n: number) => void,
): AsyncGenerator<RawRecord> {
  const data = typeof Blob !== 'undefined' && src instanceof Blob ? src : await readAll(src);
  const buf = asyncBuffer(data);
  if (buf.byteLength === 0) throw new DataError(`${file}: the file is empty`);
  let meta;
  try {
    meta = await parquetMetadataAsync(buf);
  } catch (e) {
    throw new DataError(`${file}: not a readable Parquet file: ${(e as Error).message}`);
  }
  let row = 0;
  let start = 0;
  for (const g of meta.row_groups) {
    const n = Number(g.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buf, metadata: meta, rowStart: start, rowEnd: start + n });
    } catch (e) {
      throw new DataError(`${file}: cannot decode rows ${start + 1}–${start + n}: ${(e as Error).message}`);
    }
    for (const r of rows) yield { row: ++row, value: plain(r) };
    start += n;
    onBytes?.(Math.round((buf.byteLength * start) / Math.max(1, Number(meta.num_rows))));
  }
}

/** Parquet files start (and end) with the magic bytes "PAR1". */
export function isParquetMagic(head: Uint8Array): boolean {
  return head[0] === 0x50 && head[1] === 0x41 && head[2] === 0x52 && head[3] === 0x31;
}
