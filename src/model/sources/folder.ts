// Node only: a model folder on disk, read by byte ranges through file handles (a large model is never slurped).
import { open, readdir, readFile, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelSource } from './source';
import { MissingFileError } from './source';

export class FolderSource implements ModelSource {
  private readonly handles = new Map<string, Promise<FileHandle>>();
  private files: Promise<string[]> | null = null;

  constructor(
    readonly dir: string,
    readonly name: string = dir,
  ) {}

  list(): Promise<string[]> {
    this.files ??= readdir(this.dir, { withFileTypes: true }).then(
      // Hub snapshots hold symlinks into blobs/; follow them as files.
      (ents) => ents.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name),
      (e: NodeJS.ErrnoException) => {
        throw new Error(
          e.code === 'ENOENT' ? `${this.dir}: no such folder` : `${this.dir}: cannot list (${e.message})`,
        );
      },
    );
    return this.files;
  }

  async readText(file: string): Promise<string> {
    await this.mustHave(file);
    return readFile(join(this.dir, file), 'utf8');
  }

  async size(file: string): Promise<number> {
    await this.mustHave(file);
    return (await stat(join(this.dir, file))).size;
  }

  async readRange(file: string, start: number, end: number): Promise<Uint8Array> {
    await this.mustHave(file);
    let h = this.handles.get(file);
    if (!h) {
      h = open(join(this.dir, file), 'r');
      this.handles.set(file, h);
    }
    const fh = await h;
    const out = new Uint8Array(end - start);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await fh.read(out, done, out.length - done, start + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === out.length ? out : out.subarray(0, done);
  }

  async close(): Promise<void> {
    const hs = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(hs.map(async (h) => (await h).close()));
  }

  private async mustHave(file: string): Promise<void> {
    if (!(await this.list()).includes(file)) throw new MissingFileError(this.name, file);
  }
}
