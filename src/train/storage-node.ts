// Checkpoint storage on the Node filesystem, rooted at the run's output folder; writes go through a rename.
import { appendFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CheckpointStorage } from './storage';

export class NodeStorage implements CheckpointStorage {
  constructor(readonly root: string) {}

  private at(path: string): string {
    if (path.split('/').includes('..')) throw new Error(`storage path escapes the output folder: ${path}`);
    return join(this.root, path);
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    const full = this.at(path);
    await mkdir(dirname(full), { recursive: true });
    // rename() within one folder is atomic on POSIX filesystems: a crash leaves the old file or the new one.
    const tmp = `${full}.tmp-${process.pid}`;
    await writeFile(tmp, data);
    await rename(tmp, full);
  }

  async read(path: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(this.at(path)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async append(path: string, data: Uint8Array): Promise<void> {
    const full = this.at(path);
    await mkdir(dirname(full), { recursive: true });
    await appendFile(full, data);
  }

  async list(dir: string): Promise<string[]> {
    try {
      return (await readdir(this.at(dir))).filter((n) => !n.includes('.tmp-')).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  async remove(path: string): Promise<void> {
    await rm(this.at(path), { recursive: true, force: true });
  }
}
