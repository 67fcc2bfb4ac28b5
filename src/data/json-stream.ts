// Streams the rows of a JSON document (a top-level array, or an object holding one) without parsing the whole file at once.
import { chunks, decodeUtf8, type ByteSource } from './bytes';
import { concat } from './lines';
import { DataError, type RawRecord } from './types';

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const OPEN = new Set([0x7b, 0x5b]); // { [
const CLOSE = new Set([0x7d, 0x5d]); // } ]

/**
 * Scans bytes once, tracking strings and nesting, and cuts out each element of the rows array; each element is
 * then JSON.parse'd on its own, so a broken element is one skipped row and memory holds one element at a time.
 */
export async function* readJsonArray(
  src: ByteSource,
  file: string,
  onBytes?: (n: number) => void,
): AsyncGenerator<RawRecord> {
  let phase: 'start' | 'object' | 'rows' | 'after' = 'start';
  let depth = 0; // nesting depth of the byte just scanned
  let rowsDepth = 0; // depth inside the rows array
  let inString = false;
  let escape = false;
  let line = 1;
  let read = 0;
  // The element being cut out: its parts across chunks, where it started, and whether it is a container.
  let parts: Uint8Array[] = [];
  let partsLen = 0;
  let elemStart = -1;
  let elemLine = 0;
  let elemIsScalar = false;
  let row = 0;
  let expectValue = true; // in 'rows': true after '[' or ',', false after an element
  let afterColon = false; // in 'object': a ':' at depth 1 was seen, its value not yet
  let first = true;

  const fail = (msg: string): never => {
    throw new DataError(`${file}: not valid JSON at line ${line}: ${msg}`);
  };
  const emit = (bytes: Uint8Array): RawRecord => {
    row++;
    const dec = decodeUtf8(bytes);
    if ('error' in dec) return { row, line: elemLine, error: dec.error };
    try {
      return { row, line: elemLine, value: JSON.parse(dec.text) };
    } catch (e) {
      return { row, line: elemLine, error: `not valid JSON: ${(e as Error).message}` };
    }
  };

  for await (let chunk of chunks(src)) {
    read += chunk.byteLength;
    if (first && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    first = false;
    const out: RawRecord[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === 0x0a) line++;
      if (inString) {
        if (escape) escape = false;
        else if (c === 0x5c) escape = true;
        else if (c === 0x22) {
          inString = false;
          if (phase === 'rows' && elemStart >= 0 && elemIsScalar && depth === rowsDepth) {
            out.push(emit(take(chunk, i + 1)));
            elemStart = -1;
          }
        }
        continue;
      }
      if (phase === 'start') {
        if (WS.has(c)) continue;
        if (c === 0x5b) [phase, rowsDepth, depth] = ['rows', 1, 1];
        else if (c === 0x7b) [phase, depth] = ['object', 1];
        else
          fail(
            `expected '[' (an array of rows) or '{' (an object holding one), got '${String.fromCharCode(c)}'`,
          );
        continue;
      }
      if (phase === 'object') {
        // The first value at depth 1 that is an array holds the rows (`{"data": [...]}`).
        if (afterColon && depth === 1 && !WS.has(c)) {
          afterColon = false;
          if (c === 0x5b) {
            [phase, rowsDepth, depth] = ['rows', 2, 2];
            continue;
          }
        }
        if (c === 0x22) inString = true;
        else if (OPEN.has(c)) depth++;
        else if (CLOSE.has(c)) {
          depth--;
          if (depth === 0) fail('the top-level object holds no array of rows');
        } else if (c === 0x3a && depth === 1) afterColon = true;
        continue;
      }
      if (phase === 'after') continue; // whatever follows the rows array is not ours to read
      // phase === 'rows'
      if (elemStart >= 0) {
        if (elemIsScalar) {
          if (WS.has(c) || c === 0x2c || c === 0x5d) {
            out.push(emit(take(chunk, i)));
            elemStart = -1;
            i--; // let the delimiter be seen at array level
            if (c === 0x0a) line--;
          }
          continue;
        }
        if (c === 0x22) inString = true;
        else if (OPEN.has(c)) depth++;
        else if (CLOSE.has(c)) {
          depth--;
          if (depth === rowsDepth) {
            out.push(emit(take(chunk, i + 1)));
            elemStart = -1;
          }
        }
        continue;
      }
      if (WS.has(c)) continue;
      if (c === 0x2c) {
        if (expectValue) fail(`unexpected ',' after row ${row}`);
        expectValue = true;
      } else if (c === 0x5d) {
        if (expectValue && row > 0) fail(`trailing ',' after row ${row}`);
        phase = 'after';
      } else {
        if (!expectValue) fail(`expected ',' or ']' after row ${row}`);
        expectValue = false;
        elemStart = i;
        elemLine = line;
        elemIsScalar = !OPEN.has(c);
        if (c === 0x22) inString = true;
        else if (!elemIsScalar) depth++;
      }
    }
    if (elemStart >= 0) {
      parts.push(chunk.slice(elemStart));
      partsLen += chunk.length - elemStart;
      elemStart = 0;
    }
    onBytes?.(read);
    yield* out;
  }
  if (phase === 'start') throw new DataError(`${file}: the file is empty`);
  if (phase === 'object') fail('the file ends before any array of rows (truncated?)');
  if (phase === 'rows') {
    if (elemStart >= 0 || partsLen) {
      row++;
      yield { row, line: elemLine, error: 'not valid JSON: the file ends inside this row (truncated?)' };
    } else if (row === 0) fail('the file ends inside the rows array (truncated?)');
    else
      yield { row: row + 1, line, error: 'not valid JSON: the file ends before the closing ] (truncated?)' };
  }

  function take(chunk: Uint8Array, end: number): Uint8Array {
    const piece = chunk.subarray(elemStart, end);
    if (!partsLen) return piece;
    const all = concat([...parts, piece], partsLen + piece.length);
    parts = [];
    partsLen = 0;
    return all;
  }
}
