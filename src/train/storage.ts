// Where checkpoints and metrics live: a small file interface (Node filesystem, browser OPFS, memory for tests).

/**
 * Paths are relative to the run's output folder, '/'-separated (e.g. `checkpoint-20/adapter_model.safetensors`).
 * Implementations must make `write` atomic (a reader sees the old or the new file, never a torn one), so that a crash
 * while saving leaves the previous checkpoint intact.
 */
export interface CheckpointStorage {
  write(path: string, data: Uint8Array): Promise<void>;
  /** The file's bytes, or null when it does not exist. */
  read(path: string): Promise<Uint8Array | null>;
  /** Appends to a file, creating it when absent (metrics.jsonl). */
  append(path: string, data: Uint8Array): Promise<void>;
  /** Names of the entries directly inside a folder ('' is the root); [] when the folder does not exist. */
  list(dir: string): Promise<string[]>;
  /** Removes a file or a whole folder; nothing happens when it does not exist. */
  remove(path: string): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export const utf8 = (s: string): Uint8Array => enc.encode(s);
export const fromUtf8 = (b: Uint8Array): string => dec.decode(b);

export async function readJson<T>(s: CheckpointStorage, path: string): Promise<T | null> {
  const b = await s.read(path);
  return b ? (JSON.parse(fromUtf8(b)) as T) : null;
}

export function writeJson(s: CheckpointStorage, path: string, value: unknown): Promise<void> {
  return s.write(path, utf8(JSON.stringify(value, null, 2) + '\n'));
}

/** Everything in memory: tests, and a fallback where no persistent storage is granted. */
export class MemoryStorage implements CheckpointStorage {
  readonly files = new Map<string, Uint8Array>();

  async write(path: string, data: Uint8Array): Promise<void> {
    this.files.set(path, data.slice());
  }

  async read(path: string): Promise<Uint8Array | null> {
    return this.files.get(path)?.slice() ?? null;
  }

  async append(path: string, data: Uint8Array): Promise<void> {
    const old = this.files.get(path) ?? new Uint8Array(0);
    const next = new Uint8Array(old.length + data.length);
    next.set(old);
    next.set(data, old.length);
    this.files.set(path, next);
  }

  async list(dir: string): Promise<string[]> {
    const prefix = dir === '' ? '' : `${dir.replace(/\/$/, '')}/`;
    const names = new Set<string>();
    for (const p of this.files.keys())
      if (p.startsWith(prefix)) names.add(p.slice(prefix.length).split('/')[0]);
    return [...names].sort();
  }

  async remove(path: string): Promise<void> {
    for (const p of [...this.files.keys()]) if (p === path || p.startsWith(`${path}/`)) this.files.delete(p);
  }
}
