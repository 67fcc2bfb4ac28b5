// Byte-level helpers shared by the readers: chunked input from Blob/stream, strict UTF-8 with positions, binary sniffing.

/** What a reader accepts: a Blob/File (browser, or Node's fs.openAsBlob), a byte stream, or bytes in memory. */
export type ByteSource = Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array;

/** Size in bytes where it is known without reading. */
export function sourceSize(src: ByteSource): number | undefined {
  if (src instanceof Uint8Array) return src.byteLength;
  if (typeof Blob !== 'undefined' && src instanceof Blob) return src.size;
  return undefined;
}

/** The source as a sequence of chunks; nothing is read ahead beyond one chunk. */
export async function* chunks(src: ByteSource): AsyncGenerator<Uint8Array> {
  if (src instanceof Uint8Array) {
    // Slicing keeps later stages from holding one huge buffer view per record.
    const step = 1 << 20;
    for (let i = 0; i < src.byteLength; i += step) yield src.subarray(i, Math.min(src.byteLength, i + step));
    return;
  }
  const stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> =
    typeof Blob !== 'undefined' && src instanceof Blob
      ? src.stream()
      : (src as ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>);
  if ('getReader' in stream) {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (value.byteLength) yield value;
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    for await (const c of stream) if (c.byteLength) yield c;
  }
}

/** Reads a whole source (used only where the format needs it: parquet footers of in-memory data). */
export async function readAll(src: ByteSource): Promise<Uint8Array> {
  if (src instanceof Uint8Array) return src;
  if (typeof Blob !== 'undefined' && src instanceof Blob) return new Uint8Array(await src.arrayBuffer());
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of chunks(src)) {
    parts.push(c);
    n += c.byteLength;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** Offset of the first byte that is not valid UTF-8, or -1. Mirrors what a fatal TextDecoder rejects. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) [need, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [need, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    if (i + need >= b.length) return i;
    let cp = c & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid too.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += need + 1;
  }
  return -1;
}

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes UTF-8 or says where it is broken ("invalid UTF-8: byte 0xE9 at column 13"). */
export function decodeUtf8(b: Uint8Array): { text: string } | { error: string; offset: number } {
  try {
    return { text: strict.decode(b) };
  } catch {
    const at = firstInvalidUtf8(b);
    const off = at < 0 ? b.length : at;
    const byte =
      b[off] === undefined ? 'end of data' : `byte 0x${b[off].toString(16).toUpperCase().padStart(2, '0')}`;
    return { error: `invalid UTF-8: ${byte} at column ${columnOf(b, off)}`, offset: off };
  }
}

/** 1-based character column of byte offset `off` within its line (counts code points of the valid prefix). */
function columnOf(b: Uint8Array, off: number): number {
  let start = off;
  while (start > 0 && b[start - 1] !== 0x0a) start--;
  let col = 1;
  for (let i = start; i < off; i++) if ((b[i] & 0xc0) !== 0x80) col++;
  return col;
}

/** True when the head of a file is clearly not text: NUL bytes, or many control bytes. */
export function looksBinary(head: Uint8Array): boolean {
  const n = Math.min(head.length, 8192);
  let control = 0;
  for (let i = 0; i < n; i++) {
    const c = head[i];
    if (c === 0) return true;
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x0c) control++;
  }
  return n > 0 && control / n > 0.1;
}

/** Peeks the first bytes of a source; for non-Blob streams, returns them with a source that replays them. */
export async function peek(src: ByteSource, n: number): Promise<{ head: Uint8Array; source: ByteSource }> {
  if (src instanceof Uint8Array) return { head: src.subarray(0, n), source: src };
  if (typeof Blob !== 'undefined' && src instanceof Blob)
    return { head: new Uint8Array(await src.slice(0, n).arrayBuffer()), source: src };
  const it = chunks(src);
  const got: Uint8Array[] = [];
  let len = 0;
  while (len < n) {
    const r = await it.next();
    if (r.done) break;
    got.push(r.value);
    len += r.value.byteLength;
  }
  const head = new Uint8Array(len);
  let o = 0;
  for (const g of got) {
    head.set(g, o);
    o += g.byteLength;
  }
  async function* replay(): AsyncGenerator<Uint8Array> {
    yield* got;
    yield* it;
  }
  return { head: head.subarray(0, n), source: replay() };
}
