// Browser: the Hub download cache in Cache Storage, so a second visit loads the model without the network.
import { FileListSource } from './files';
import type { CachedFileState, HubCache } from './hub';
import type { ModelSource } from './source';

/** Keys are synthetic URLs on a host that is never fetched; they only name cache entries. */
const KEY_BASE = 'https://lora-studio.invalid/hub';
const ABSENT_HEADER = 'x-lora-studio-absent';

/**
 * Cache Storage streams a Response body to disk and hands back disk-backed Blobs, so a multi-GB model is
 * neither held in memory while downloading nor when read back by byte ranges (Blob.slice).
 */
export class BrowserHubCache implements HubCache {
  constructor(readonly cacheName = 'lora-studio-hub') {}

  private open(): Promise<Cache> {
    return caches.open(this.cacheName);
  }

  private key(repo: string, commit: string, file: string): string {
    return `${KEY_BASE}/${repo}/${encodeURIComponent(commit)}/${file}`;
  }

  private refKey(repo: string, revision: string): string {
    return `${KEY_BASE}/${repo}/refs/${encodeURIComponent(revision)}`;
  }

  async getRef(repo: string, revision: string): Promise<string | null> {
    const res = await (await this.open()).match(this.refKey(repo, revision));
    return res ? (await res.text()).trim() || null : null;
  }

  async setRef(repo: string, revision: string, commit: string): Promise<void> {
    await (await this.open()).put(this.refKey(repo, revision), new Response(commit));
  }

  async state(repo: string, commit: string, file: string): Promise<CachedFileState> {
    const res = await (await this.open()).match(this.key(repo, commit, file));
    if (!res) return 'unknown';
    return res.headers.get(ABSENT_HEADER) ? 'absent' : 'present';
  }

  async markAbsent(repo: string, commit: string, file: string): Promise<void> {
    const res = new Response(null, { headers: { [ABSENT_HEADER]: '1' } });
    await (await this.open()).put(this.key(repo, commit, file), res);
  }

  async put(repo: string, commit: string, file: string, body: ReadableStream<Uint8Array>): Promise<void> {
    // cache.put rejects, storing nothing, when the body stream errors: no partial file is ever cached.
    await (await this.open()).put(this.key(repo, commit, file), new Response(body));
  }

  async readText(repo: string, commit: string, file: string): Promise<string> {
    return (await this.blob(await this.open(), repo, commit, file)).text();
  }

  async source(repo: string, commit: string, name: string): Promise<ModelSource> {
    const cache = await this.open();
    const prefix = `${KEY_BASE}/${repo}/${encodeURIComponent(commit)}/`;
    const entries: [string, Blob][] = [];
    for (const req of await cache.keys()) {
      if (!req.url.startsWith(prefix)) continue;
      const file = req.url.slice(prefix.length);
      if (file.includes('/')) continue;
      const res = await cache.match(req);
      if (res && !res.headers.get(ABSENT_HEADER)) entries.push([file, await res.blob()]);
    }
    return FileListSource.fromBlobs(entries, name);
  }

  private async blob(cache: Cache, repo: string, commit: string, file: string): Promise<Blob> {
    const res = await cache.match(this.key(repo, commit, file));
    if (!res || res.headers.get(ABSENT_HEADER)) throw new Error(`${repo}@${commit}: ${file} is not cached`);
    return res.blob();
  }
}
