// Strict safetensors reader (lazy, by byte ranges) and writer in the layout Hugging Face writes, plus dtype conversions.
import { bf16ToF32, f16ToF32 } from '../gpu/context';

/** Element types whose headers we accept. The engine loads only the floats; integer tensors can be listed and read. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
  U8: 1,
};

export function isFloatDtype(d: SafetensorsDtype): d is 'F32' | 'F16' | 'BF16' {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

/** Anything that can read byte ranges: a Node file handle, a browser File, a buffer in memory. */
export interface RangeReader {
  /** File name, used in every error message. */
  readonly name: string;
  size(): Promise<number>;
  /** Bytes [start, end) of the file. */
  read(start: number, end: number): Promise<Uint8Array>;
}

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Offsets into the data section (after the header), [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, TensorInfo>;
  /** Absolute file offset where the data section starts (8 + header length). */
  dataStart: number;
  fileSize: number;
}

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

/** The reference implementation refuses headers above 100 MB; a header that large means a corrupt length field. */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Validates and returns the header. Strict, as the `safetensors` crate is: known dtypes, integer shapes, offsets
 * inside the data, shape × dtype size equal to the byte span, tensors contiguous from 0 with no overlap or gap, and
 * the data section ending exactly at the end of the file.
 */
export async function readSafetensorsHeader(reader: RangeReader): Promise<SafetensorsHeader> {
  const file = reader.name;
  const fileSize = await reader.size();
  if (fileSize < 8)
    throw new SafetensorsError(file, `${fileSize} bytes: too short for the 8-byte header length`);
  const lenBytes = await reader.read(0, 8);
  const len64 = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (len64 > BigInt(fileSize - 8)) {
    throw new SafetensorsError(
      file,
      `header length ${len64} runs past the end of the file (${fileSize} bytes)`,
    );
  }
  const len = Number(len64);
  if (len > MAX_HEADER_BYTES)
    throw new SafetensorsError(file, `header length ${len} exceeds ${MAX_HEADER_BYTES}`);
  return parseSafetensorsHeader(await reader.read(8, 8 + len), file, fileSize);
}

/** Parses header bytes (the JSON after the length field) of a file of `fileSize` bytes. */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  file: string,
  fileSize: number,
): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) throw new SafetensorsError(file, 'header is not a JSON object');
  const dataStart = 8 + headerBytes.length;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(entry)) throw new SafetensorsError(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.set(name, parseEntry(file, name, entry, dataSize));
  }
  checkLayout(file, [...tensors.values()], dataSize);
  return { file, metadata, tensors, dataStart, fileSize };
}

function parseEntry(file: string, name: string, entry: unknown, dataSize: number): TensorInfo {
  const where = `tensor "${name}"`;
  if (!isObject(entry)) throw new SafetensorsError(file, `${where}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw new SafetensorsError(
      file,
      `${where}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new SafetensorsError(
      file,
      `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
    );
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw new SafetensorsError(file, `${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new SafetensorsError(file, `${where}: data_offsets [${begin}, ${end}] are reversed`);
  if (end > dataSize) {
    throw new SafetensorsError(
      file,
      `${where}: data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes; file truncated?)`,
    );
  }
  const d = dtype as SafetensorsDtype;
  const want = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[d];
  if (want !== end - begin) {
    throw new SafetensorsError(
      file,
      `${where}: shape [${shape.join(',')}] ${d} is ${want} bytes but data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype: d, shape: shape as number[], begin, end };
}

/** Tensors must tile the data section exactly: sorted by offset, each starts where the previous ended. */
function checkLayout(file: string, infos: TensorInfo[], dataSize: number): void {
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: TensorInfo | null = null;
  for (const t of sorted) {
    if (t.begin < pos) {
      throw new SafetensorsError(
        file,
        `tensor "${t.name}" [${t.begin}, ${t.end}] overlaps tensor "${prev?.name}" [${prev?.begin}, ${prev?.end}]`,
      );
    }
    if (t.begin > pos) {
      throw new SafetensorsError(
        file,
        `gap in the data before tensor "${t.name}" (bytes ${pos}..${t.begin} unused)`,
      );
    }
    pos = t.end;
    prev = t;
  }
  if (pos !== dataSize) {
    throw new SafetensorsError(file, `data section is ${dataSize} bytes but the tensors cover ${pos}`);
  }
}

/** An opened safetensors file: the validated header, and tensors read on demand. */
export class SafetensorsFile {
  private constructor(
    readonly reader: RangeReader,
    readonly header: SafetensorsHeader,
  ) {}

  static async open(reader: RangeReader): Promise<SafetensorsFile> {
    return new SafetensorsFile(reader, await readSafetensorsHeader(reader));
  }

  get names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError(this.header.file, `no tensor "${name}"`);
    return t;
  }

  /** Raw little-endian bytes of one tensor. */
  async bytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    const got = await this.reader.read(this.header.dataStart + t.begin, this.header.dataStart + t.end);
    if (got.length !== t.end - t.begin) {
      throw new SafetensorsError(
        this.header.file,
        `tensor "${name}": read ${got.length} of ${t.end - t.begin} bytes`,
      );
    }
    return got;
  }

  /** A float tensor widened to f32 (exact for F16 and BF16). */
  async f32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    if (!isFloatDtype(t.dtype)) {
      throw new SafetensorsError(this.header.file, `tensor "${name}" is ${t.dtype}, not a float type`);
    }
    return toF32(t.dtype, await this.bytes(name));
  }
}

/** A RangeReader over bytes already in memory. */
export function memoryReader(name: string, bytes: Uint8Array): RangeReader {
  // A plain view, so that a Node Buffer's subarray semantics do not leak to callers.
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  return {
    name,
    size: async () => data.length,
    read: async (start, end) => data.subarray(start, Math.min(end, data.length)),
  };
}

// ---- dtype conversions ----------------------------------------------------------------------------------------
// NOTE: typed-array views assume a little-endian host, as safetensors stores data; every WebGPU platform is LE.

/**
 * Copies into a fresh, aligned buffer (a range read may start at any byte offset). Not `bytes.slice()`: on a Node
 * Buffer that is a view into a shared pool, not a copy.
 */
export function aligned(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out.buffer;
}

export function toF32(dtype: 'F32' | 'F16' | 'BF16', bytes: Uint8Array): Float32Array {
  if (dtype === 'F32') return new Float32Array(aligned(bytes));
  const u16 = new Uint16Array(aligned(bytes));
  return dtype === 'BF16' ? bf16ToF32(u16) : f16ToF32(u16);
}

/** f32 → bf16 with round-to-nearest-even, as torch's `.to(torch.bfloat16)`; NaN stays NaN. */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 → f16 with round-to-nearest-even, overflow to ±Inf, gradual underflow to subnormals. */
export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    f32Scratch[0] = src[i];
    const x = u32Scratch[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rem = mant & ((1 << shift) - 1);
      let m = mant >>> shift;
      if (rem > half || (rem === half && m & 1)) m += 1;
      out[i] = sign | m;
    } else {
      const rem = mant & 0x1fff;
      let h = (e << 10) | (mant >>> 13);
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h += 1; // a carry into the exponent rounds up correctly
      out[i] = sign | h;
    }
  }
  return out;
}

// ---- writer ------------------------------------------------------------------------------------------------------

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: Uint8Array;
}

/**
 * Serialises tensors as Hugging Face's `safetensors` does: compact JSON header with `__metadata__` first, tensors
 * ordered by dtype size (largest first, which keeps every tensor aligned) then by name, the header padded with
 * spaces to a multiple of 8 bytes, and the data contiguous in the same order. With one dtype this is name order.
 */
export function writeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Uint8Array {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__') throw new Error('writeSafetensors: "__metadata__" is not a tensor name');
    if (seen.has(t.name)) throw new Error(`writeSafetensors: tensor "${t.name}" given twice`);
    seen.add(t.name);
    if (!(t.dtype in DTYPE_BYTES))
      throw new Error(`writeSafetensors: tensor "${t.name}": unknown dtype ${t.dtype}`);
    const want = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.length !== want) {
      throw new Error(
        `writeSafetensors: tensor "${t.name}": shape [${t.shape.join(',')}] ${t.dtype} needs ${want} bytes, got ${t.data.length}`,
      );
    }
  }
  const order = [...tensors].sort(
    (a, b) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of order) {
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const t of order) {
    out.set(t.data, pos);
    pos += t.data.length;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
