// Checkpoints: LoRA weights and optimizer state as safetensors, trainer state and data order, a marker written last.
import type { OptimizerSnapshot } from './optimizer';
import type { TrainerStateJson } from './state';
import type { CheckpointStorage } from './storage';
import { fromUtf8, readJson, utf8, writeJson } from './storage';

export interface NamedArray {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

/** Minimal safetensors (F32 only): 8-byte little-endian header length, JSON header, then the raw data. */
export function encodeSafetensors(
  arrays: readonly NamedArray[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const a of arrays) {
    const bytes = a.data.length * 4;
    header[a.name] = { dtype: 'F32', shape: a.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (the format allows it; loaders expect it).
  json += ' '.repeat((8 - ((8 + utf8(json).length) % 8)) % 8);
  const head = utf8(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const a of arrays) {
    out.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.length * 4), at);
    at += a.data.length * 4;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array): {
  arrays: Map<string, NamedArray>;
  metadata: Record<string, string>;
} {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(fromUtf8(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const base = 8 + n;
  const arrays = new Map<string, NamedArray>();
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (e.dtype !== 'F32') throw new Error(`safetensors: ${name} is ${e.dtype}; checkpoints hold F32 only`);
    const [s, t] = e.data_offsets;
    // Copy into an aligned buffer: the slice of the file may start at any byte.
    const data = new Float32Array(new Uint8Array(bytes.subarray(base + s, base + t)).buffer);
    arrays.set(name, { name, shape: e.shape, data });
  }
  return { arrays, metadata: (header.__metadata__ ?? {}) as Record<string, string> };
}

export const ADAPTER_FILE = 'adapter_model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'trainer_state.json';
export const ORDER_FILE = 'data_order.bin';
const COMPLETE = 'COMPLETE';

export const checkpointDir = (step: number): string => `checkpoint-${step}`;

export interface Checkpoint {
  dir: string;
  adapter: Map<string, NamedArray>;
  optimizer: OptimizerSnapshot;
  state: TrainerStateJson;
  /** The example order of the epoch the checkpoint was taken in. */
  order: Uint32Array;
}

/** Writes a checkpoint; the COMPLETE marker goes last, so a crash mid-save leaves no half checkpoint behind. */
export async function saveCheckpoint(
  storage: CheckpointStorage,
  c: Omit<Checkpoint, 'dir'>,
): Promise<string> {
  const dir = checkpointDir(c.state.global_step);
  await storage.remove(dir);
  await storage.write(`${dir}/${ADAPTER_FILE}`, encodeSafetensors([...c.adapter.values()], { format: 'pt' }));
  const opt: NamedArray[] = [];
  for (const [name, s] of c.optimizer.state) {
    opt.push({ name: `${name}.exp_avg`, shape: [s.m.length], data: s.m });
    opt.push({ name: `${name}.exp_avg_sq`, shape: [s.v.length], data: s.v });
  }
  await storage.write(
    `${dir}/${OPTIMIZER_FILE}`,
    encodeSafetensors(opt, { kind: c.optimizer.kind, step: String(c.optimizer.t) }),
  );
  await storage.write(
    `${dir}/${ORDER_FILE}`,
    new Uint8Array(c.order.buffer, c.order.byteOffset, c.order.byteLength),
  );
  await writeJson(storage, `${dir}/${STATE_FILE}`, c.state);
  await storage.write(`${dir}/${COMPLETE}`, utf8(`${c.state.global_step}\n`));
  return dir;
}

/** Complete checkpoints, oldest first. */
export async function listCheckpoints(storage: CheckpointStorage): Promise<string[]> {
  const dirs = (await storage.list('')).filter((n) => /^checkpoint-\d+$/.test(n));
  const done: string[] = [];
  for (const d of dirs) if (await storage.read(`${d}/${COMPLETE}`)) done.push(d);
  return done.sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)));
}

export async function latestCheckpoint(storage: CheckpointStorage): Promise<string | null> {
  const all = await listCheckpoints(storage);
  return all.length ? all[all.length - 1] : null;
}

export async function loadCheckpoint(storage: CheckpointStorage, dir: string): Promise<Checkpoint> {
  if (!(await storage.read(`${dir}/${COMPLETE}`))) throw new Error(`${dir} is not a complete checkpoint`);
  const need = async (file: string) => {
    const b = await storage.read(`${dir}/${file}`);
    if (!b) throw new Error(`${dir}/${file} is missing`);
    return b;
  };
  const adapter = decodeSafetensors(await need(ADAPTER_FILE)).arrays;
  const opt = decodeSafetensors(await need(OPTIMIZER_FILE));
  const state = new Map<string, { m: Float32Array; v: Float32Array }>();
  for (const [name, a] of opt.arrays) {
    if (!name.endsWith('.exp_avg')) continue;
    const base = name.slice(0, -'.exp_avg'.length);
    const v = opt.arrays.get(`${base}.exp_avg_sq`);
    if (!v) throw new Error(`${dir}: ${base}.exp_avg_sq is missing`);
    state.set(base, { m: a.data, v: v.data });
  }
  const kind = opt.metadata.kind === 'sgd' ? 'sgd' : 'adamw';
  const trainerState = await readJson<TrainerStateJson>(storage, `${dir}/${STATE_FILE}`);
  if (!trainerState) throw new Error(`${dir}/${STATE_FILE} is missing`);
  const orderBytes = await need(ORDER_FILE);
  const order = new Uint32Array(new Uint8Array(orderBytes).buffer);
  return {
    dir,
    adapter,
    optimizer: { kind, t: Number(opt.metadata.step), state },
    state: trainerState,
    order,
  };
}

/** Deletes the oldest complete checkpoints beyond `keep` (save_total_limit). */
export async function pruneCheckpoints(storage: CheckpointStorage, keep: number): Promise<void> {
  if (!(keep > 0) || !Number.isFinite(keep)) return;
  const all = await listCheckpoints(storage);
  for (const d of all.slice(0, Math.max(0, all.length - keep))) await storage.remove(d);
}
