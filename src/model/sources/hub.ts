// Hugging Face Hub download (fetch + a cache behind one interface): resolves a revision, fetches the model files once.
import type { ModelSource } from './source';

/** Files a model needs (besides the weights, which depend on the index). */
const REQUIRED = 'config.json';
const OPTIONAL = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
];
const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';

export type CachedFileState = 'present' | 'absent' | 'unknown';

/**
 * Storage for downloaded files, keyed by repo, commit and file name. Node: the Hugging Face cache folder
 * (hub-cache-node.ts); browser: Cache Storage (hub-cache-browser.ts).
 */
export interface HubCache {
  /** The commit a branch or tag pointed to when last resolved, or null when never resolved. */
  getRef(repo: string, revision: string): Promise<string | null>;
  setRef(repo: string, revision: string, commit: string): Promise<void>;
  /** 'absent' means the Hub answered 404 for it before, so it is not asked again. */
  state(repo: string, commit: string, file: string): Promise<CachedFileState>;
  markAbsent(repo: string, commit: string, file: string): Promise<void>;
  /** Stores a response body as it streams in (never whole in memory); a stream that errors stores nothing. */
  put(repo: string, commit: string, file: string, body: ReadableStream<Uint8Array>): Promise<void>;
  /** The cached files of one commit as a ModelSource. */
  source(repo: string, commit: string, name: string): Promise<ModelSource>;
  /** Text of a cached file. */
  readText(repo: string, commit: string, file: string): Promise<string>;
}

export interface DownloadProgress {
  file: string;
  loaded: number;
  /** From Content-Length; undefined when the server does not say. */
  total?: number;
}

export interface HubOptions {
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** Default: `HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token for gated or private repos (default `HF_TOKEN`). */
  token?: string;
  cache: HubCache;
  onProgress?: (p: DownloadProgress) => void;
  /** Injected for tests; default globalThis.fetch. */
  fetch?: typeof fetch;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/** `org/name` or `org/name@revision` → parts; null when the text is not a Hub id. */
export function parseHubId(text: string): { repo: string; revision?: string } | null {
  const at = text.indexOf('@');
  const repo = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? undefined : text.slice(at + 1);
  if (!REPO_ID.test(repo) || repo.includes('..') || revision === '') return null;
  return { repo, revision };
}

function env(key: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[key];
}

export function hubEndpoint(explicit?: string): string {
  return (explicit ?? env('HF_ENDPOINT') ?? 'https://huggingface.co').replace(/\/+$/, '');
}

/** The URL form the Hub (and its mirrors) serve: `{endpoint}/{repo}/resolve/{revision}/{file}`. */
export function hubFileUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
}

const isCommit = (rev: string) => /^[0-9a-f]{40}$/.test(rev);

/** A weight-file name from an index: a plain file name, never a path. */
function safeFileName(name: string, where: string): string {
  if (!/^[\w.-]+$/.test(name) || name.startsWith('.'))
    throw new Error(`${where}: unsafe file name ${JSON.stringify(name)}`);
  return name;
}

/**
 * Downloads the model files of `repo` at `revision` into the cache (only those missing) and returns them as a
 * source. When the cache already holds a complete snapshot for the revision, no request is made at all.
 */
export async function openHubModel(repo: string, o: HubOptions): Promise<ModelSource> {
  if (!parseHubId(repo)) throw new Error(`"${repo}" is not a Hub model id (org/name)`);
  const revision = o.revision ?? 'main';
  const { cache } = o;
  const name = revision === 'main' ? repo : `${repo}@${revision}`;
  const known = isCommit(revision) ? revision : await cache.getRef(repo, revision);
  if (known && (await isComplete(cache, repo, known))) return cache.source(repo, known, name);

  const endpoint = hubEndpoint(o.endpoint);
  const doFetch = o.fetch ?? globalThis.fetch;
  const token = o.token ?? env('HF_TOKEN');
  const get = async (rev: string, file: string): Promise<Response | null> => {
    const url = hubFileUrl(endpoint, repo, rev, file);
    let res: Response;
    try {
      res = await doFetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    } catch (e) {
      throw new Error(`${name}: cannot reach ${url} (${(e as Error).message})`, { cause: e });
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (res.status === 401 || res.status === 403) {
      throw new Error(`${name}: ${url} answered ${res.status} (gated or private repo? set HF_TOKEN)`);
    }
    if (!res.ok || !res.body) throw new Error(`${name}: ${url} answered ${res.status} ${res.statusText}`);
    return res;
  };
  const store = async (commit: string, file: string, res: Response) => {
    const len = res.headers.get('content-length');
    const total = len === null ? undefined : Number(len);
    // With Content-Encoding, fetch hands over decoded bytes, which Content-Length does not count.
    const checkLength = total !== undefined && !res.headers.get('content-encoding');
    let loaded = 0;
    o.onProgress?.({ file, loaded, total });
    const counted = res.body!.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          loaded += chunk.length;
          o.onProgress?.({ file, loaded, total });
          ctl.enqueue(chunk);
        },
        flush(ctl) {
          if (checkLength && loaded !== total)
            ctl.error(new Error(`${name}: ${file} ended after ${loaded} of ${total} bytes`));
        },
      }),
    );
    try {
      await cache.put(repo, commit, file, counted);
    } catch (e) {
      const msg = (e as Error).message;
      throw new Error(msg.startsWith(name) ? msg : `${name}: download of ${file} failed (${msg})`, {
        cause: e,
      });
    }
  };

  // config.json first: it proves the repo exists and its response names the commit the revision points to.
  const configRes = await get(revision, REQUIRED);
  if (!configRes) {
    throw new Error(
      `${name}: ${hubFileUrl(endpoint, repo, revision, REQUIRED)} not found (no such repo or revision?)`,
    );
  }
  const commit = configRes.headers.get('x-repo-commit') ?? known ?? revision;
  if (commit !== revision) await cache.setRef(repo, revision, commit);
  if ((await cache.state(repo, commit, REQUIRED)) === 'present') await configRes.body?.cancel();
  else await store(commit, REQUIRED, configRes);

  // Later requests name the commit, so a push during the download cannot mix two versions.
  const fetchOnce = async (file: string, required: boolean): Promise<boolean> => {
    const state = await cache.state(repo, commit, file);
    if (state !== 'unknown') return state === 'present';
    const res = await get(commit, file);
    if (!res) {
      if (required) throw new Error(`${name}: ${file} not found on ${endpoint}`);
      await cache.markAbsent(repo, commit, file);
      return false;
    }
    await store(commit, file, res);
    return true;
  };
  if (!(await fetchOnce(SINGLE, false))) {
    if (!(await fetchOnce(INDEX, false))) {
      throw new Error(
        `${name}: neither ${SINGLE} nor ${INDEX} exists (only safetensors checkpoints are supported)`,
      );
    }
    for (const shard of shardsOf(await cache.readText(repo, commit, INDEX), name))
      await fetchOnce(shard, true);
  }
  for (const file of OPTIONAL) await fetchOnce(file, false);
  return cache.source(repo, commit, name);
}

function shardsOf(indexText: string, where: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(indexText);
  } catch (e) {
    throw new Error(`${where}: ${INDEX} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const wm = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null) throw new Error(`${where}: ${INDEX} has no weight_map`);
  return [...new Set(Object.values(wm).map((f) => safeFileName(String(f), `${where}/${INDEX}`)))].sort();
}

/** Every file is present or known absent, and the weights are all there. */
async function isComplete(cache: HubCache, repo: string, commit: string): Promise<boolean> {
  if ((await cache.state(repo, commit, REQUIRED)) !== 'present') return false;
  for (const f of OPTIONAL) if ((await cache.state(repo, commit, f)) === 'unknown') return false;
  if ((await cache.state(repo, commit, SINGLE)) === 'present') return true;
  if ((await cache.state(repo, commit, INDEX)) !== 'present') return false;
  let shards: string[];
  try {
    shards = shardsOf(await cache.readText(repo, commit, INDEX), repo);
  } catch {
    return false;
  }
  for (const s of shards) if ((await cache.state(repo, commit, s)) !== 'present') return false;
  return true;
}
