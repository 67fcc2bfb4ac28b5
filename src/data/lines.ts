// Splits a byte stream into lines (LF, with CR stripped) or CSV records (LF outside quotes), never holding more than one partial record.
import { chunks, type ByteSource } from './bytes';

export interface ByteLine {
  bytes: Uint8Array;
  /** 1-based line number of the first line of this record. */
  line: number;
}

export interface SplitOptions {
  /** Treat `"` as a quote: a newline inside quotes does not end the record (CSV/TSV). */
  quotes?: boolean;
  onBytes?: (bytesRead: number) => void;
}

/** Yields each record's bytes; a UTF-8 BOM at the start is dropped; the last record may lack a final newline. */
export async function* splitLines(src: ByteSource, o: SplitOptions = {}): AsyncGenerator<ByteLine> {
  let carry: Uint8Array[] = [];
  let carryLen = 0;
  let line = 1;
  let recordLine = 1;
  let inQuote = false;
  let read = 0;
  let first = true;
  for await (let chunk of chunks(src)) {
    read += chunk.byteLength;
    if (first) {
      first = false;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    let start = 0;
    for (;;) {
      let nl: number;
      if (o.quotes) {
        nl = -1;
        for (let i = start; i < chunk.length; i++) {
          const c = chunk[i];
          // A doubled "" inside quotes toggles twice, so plain toggling handles RFC 4180 escapes.
          if (c === 0x22) inQuote = !inQuote;
          else if (c === 0x0a) {
            if (!inQuote) {
              nl = i;
              break;
            }
            line++;
          }
        }
      } else nl = chunk.indexOf(0x0a, start);
      if (nl < 0) {
        if (start < chunk.length) {
          carry.push(chunk.slice(start));
          carryLen += chunk.length - start;
        }
        break;
      }
      let bytes = chunk.subarray(start, nl);
      if (carryLen) {
        bytes = concat([...carry, bytes], carryLen + bytes.length);
        carry = [];
        carryLen = 0;
      }
      if (bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
      yield { bytes, line: recordLine };
      line++;
      recordLine = line;
      start = nl + 1;
    }
    o.onBytes?.(read);
  }
  if (carryLen) {
    let bytes = concat(carry, carryLen);
    if (bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    yield { bytes, line: recordLine };
  }
}

export function concat(parts: Uint8Array[], n: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** True for a line of spaces, tabs and CRs only. */
export function isBlank(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0b && c !== 0x0c) return false;
  }
  return true;
}
