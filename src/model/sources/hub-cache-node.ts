// Node only: the Hugging Face cache layout (models--org--name/{refs,snapshots,.no_exist}), shared with huggingface_hub.
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { FolderSource } from './folder';
import type { CachedFileState, HubCache } from './hub';
import type { ModelSource } from './source';

/** `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, as huggingface_hub resolves it. */
export function defaultHubCacheDir(): string {
  if (process.env.HF_HUB_CACHE) return process.env.HF_HUB_CACHE;
  const home =
    process.env.HF_HOME ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/**
 * Files are written straight into `snapshots/<commit>/` rather than into `blobs/` behind symlinks: that is
 * huggingface_hub's own layout where symlinks are unavailable, and it reads such snapshots as they are.
 * Known-missing files are recorded as empty files in `.no_exist/<commit>/`, as huggingface_hub does.
 */
export class NodeHubCache implements HubCache {
  readonly root: string;

  constructor(root?: string) {
    this.root = root ?? defaultHubCacheDir();
  }

  repoDir(repo: string): string {
    return join(this.root, `models--${repo.split('/').join('--')}`);
  }

  snapshotDir(repo: string, commit: string): string {
    return join(this.repoDir(repo), 'snapshots', commit);
  }

  async getRef(repo: string, revision: string): Promise<string | null> {
    try {
      return (await readFile(join(this.repoDir(repo), 'refs', revision), 'utf8')).trim() || null;
    } catch {
      return null;
    }
  }

  async setRef(repo: string, revision: string, commit: string): Promise<void> {
    const path = join(this.repoDir(repo), 'refs', revision);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, commit);
  }

  async state(repo: string, commit: string, file: string): Promise<CachedFileState> {
    if (existsSync(join(this.snapshotDir(repo, commit), file))) return 'present';
    if (existsSync(join(this.repoDir(repo), '.no_exist', commit, file))) return 'absent';
    return 'unknown';
  }

  async markAbsent(repo: string, commit: string, file: string): Promise<void> {
    const dir = join(this.repoDir(repo), '.no_exist', commit);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, file), '');
  }

  async put(repo: string, commit: string, file: string, body: ReadableStream<Uint8Array>): Promise<void> {
    const dir = this.snapshotDir(repo, commit);
    await mkdir(dir, { recursive: true });
    const final = join(dir, file);
    // Written under another name and renamed when complete, so an interrupted download is never taken as the file.
    const part = `${final}.incomplete`;
    const out = createWriteStream(part);
    const done = new Promise<void>((resolve, reject) => {
      out.on('finish', resolve);
      out.on('error', reject);
    });
    try {
      const reader = body.getReader();
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) break;
        if (!out.write(value)) await new Promise((r) => out.once('drain', r));
      }
      out.end();
      await done;
    } catch (e) {
      out.destroy();
      await rm(part, { force: true });
      throw e;
    }
    await rename(part, final);
  }

  async readText(repo: string, commit: string, file: string): Promise<string> {
    return readFile(join(this.snapshotDir(repo, commit), file), 'utf8');
  }

  async source(repo: string, commit: string, name: string): Promise<ModelSource> {
    return new FolderSource(this.snapshotDir(repo, commit), name);
  }
}
