// Checkpoint storage in the browser's Origin Private File System: it survives a reload, a crash or a lost device.
import type { CheckpointStorage } from './storage';

/** Entries of a directory handle (the async iterator is not in every lib.dom version, so it is typed here). */
type DirEntries = FileSystemDirectoryHandle & { keys(): AsyncIterable<string> };

export class OpfsStorage implements CheckpointStorage {
  /** `root` is a folder under navigator.storage.getDirectory(), e.g. `runs/2024-06-01-qwen`. */
  private constructor(private readonly root: FileSystemDirectoryHandle) {}

  static async open(root: string): Promise<OpfsStorage> {
    // Ask the browser not to evict the origin's data under storage pressure (granted or not, OPFS still works).
    await navigator.storage.persist?.().catch(() => false);
    let dir = await navigator.storage.getDirectory();
    for (const part of root.split('/').filter(Boolean))
      dir = await dir.getDirectoryHandle(part, { create: true });
    return new OpfsStorage(dir);
  }

  private async folder(parts: string[], create: boolean): Promise<FileSystemDirectoryHandle | null> {
    let dir = this.root;
    for (const part of parts) {
      try {
        dir = await dir.getDirectoryHandle(part, { create });
      } catch (e) {
        if ((e as DOMException).name === 'NotFoundError') return null;
        throw e;
      }
    }
    return dir;
  }

  private split(path: string): { dirs: string[]; name: string } {
    const parts = path.split('/').filter(Boolean);
    if (parts.includes('..') || parts.length === 0) throw new Error(`bad storage path: ${path}`);
    return { dirs: parts.slice(0, -1), name: parts[parts.length - 1] };
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    const { dirs, name } = this.split(path);
    const dir = (await this.folder(dirs, true))!;
    const file = await dir.getFileHandle(name, { create: true });
    // A writable stream writes to a swap file that replaces the original only on close(): atomic as the interface asks.
    const w = await file.createWritable({ keepExistingData: false });
    await w.write(data as Uint8Array<ArrayBuffer>);
    await w.close();
  }

  async read(path: string): Promise<Uint8Array | null> {
    const { dirs, name } = this.split(path);
    const dir = await this.folder(dirs, false);
    if (!dir) return null;
    try {
      const file = await (await dir.getFileHandle(name)).getFile();
      return new Uint8Array(await file.arrayBuffer());
    } catch (e) {
      if ((e as DOMException).name === 'NotFoundError') return null;
      throw e;
    }
  }

  async append(path: string, data: Uint8Array): Promise<void> {
    const { dirs, name } = this.split(path);
    const dir = (await this.folder(dirs, true))!;
    const handle = await dir.getFileHandle(name, { create: true });
    const size = (await handle.getFile()).size;
    const w = await handle.createWritable({ keepExistingData: true });
    await w.write({ type: 'write', position: size, data: data as Uint8Array<ArrayBuffer> });
    await w.close();
  }

  async list(dir: string): Promise<string[]> {
    const handle = await this.folder(dir.split('/').filter(Boolean), false);
    if (!handle) return [];
    const names: string[] = [];
    for await (const n of (handle as DirEntries).keys()) names.push(n);
    return names.sort();
  }

  async remove(path: string): Promise<void> {
    const { dirs, name } = this.split(path);
    const dir = await this.folder(dirs, false);
    try {
      await dir?.removeEntry(name, { recursive: true });
    } catch (e) {
      if ((e as DOMException).name !== 'NotFoundError') throw e;
    }
  }
}
