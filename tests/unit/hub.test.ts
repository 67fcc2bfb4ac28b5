// Hub download against a local node:http server serving fixture folders: HF cache layout, progress, offline reuse.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/model/load';
import { FileListSource } from '../../src/model/sources/files';
import type { DownloadProgress } from '../../src/model/sources/hub';
import { hubFileUrl, openHubModel, parseHubId } from '../../src/model/sources/hub';
import { NodeHubCache } from '../../src/model/sources/hub-cache-node';
import { openModelSource } from '../../src/model/sources/node';
import { fixture, hasFixtures } from '../helpers/fixtures';

const COMMIT = 'a'.repeat(40);
/** repo id → fixture folder the server serves for it. */
const REPOS: Record<string, string> = {
  'tiny/stories-sharded': 'models/stories260K-hf-sharded',
  'tiny/gpt2': 'models/gpt2-tiny-random',
  'tiny/broken': 'models/stories260K-hf',
};

describe('Hub ids and URLs', () => {
  it('parses org/name[@revision] and refuses paths', () => {
    expect(parseHubId('org/name')).toEqual({ repo: 'org/name', revision: undefined });
    expect(parseHubId('HuggingFaceTB/SmolLM-135M@v1.0')).toEqual({
      repo: 'HuggingFaceTB/SmolLM-135M',
      revision: 'v1.0',
    });
    expect(parseHubId('gpt2')).toEqual({ repo: 'gpt2', revision: undefined });
    for (const bad of ['./models/x', '/abs/path', 'a/b/c', '../x', 'org/..', 'org/name@'])
      expect(parseHubId(bad), bad).toBeNull();
  });

  it('builds resolve URLs with the revision encoded', () => {
    expect(hubFileUrl('https://hf.co', 'o/n', 'refs/pr/1', 'config.json')).toBe(
      'https://hf.co/o/n/resolve/refs%2Fpr%2F1/config.json',
    );
  });
});

describe.skipIf(!hasFixtures)('Hub download (local server)', () => {
  let server: Server;
  let endpoint: string;
  const requests: string[] = [];
  let cacheRoot: string;

  beforeAll(async () => {
    cacheRoot = mkdtempSync(join(tmpdir(), 'hub-cache-'));
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/([^/]+)$/.exec(req.url ?? '');
      const dir = m && REPOS[m[1]];
      if (m?.[1] === 'tiny/gated') {
        res.writeHead(401).end();
        return;
      }
      const path = dir && fixture(`${dir}/${m[3]}`);
      if (!path || !existsSync(path)) {
        res.writeHead(404).end('Entry not found');
        return;
      }
      const body = readFileSync(path);
      // tiny/broken's weights stop halfway, as a dropped connection would leave them.
      const cut = m[1] === 'tiny/broken' && m[3] === 'model.safetensors';
      res.writeHead(200, { 'content-length': body.length, 'x-repo-commit': COMMIT });
      res.end(cut ? body.subarray(0, body.length >> 1) : body);
      if (cut) res.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(cacheRoot, { recursive: true, force: true });
  });

  it('downloads a sharded model into the HF cache layout, then loads it again without a request', async () => {
    const cache = new NodeHubCache(cacheRoot);
    const progress: DownloadProgress[] = [];
    requests.length = 0;
    const src = await openHubModel('tiny/stories-sharded', {
      endpoint,
      cache,
      onProgress: (p) => progress.push(p),
    });
    const repoDir = join(cacheRoot, 'models--tiny--stories-sharded');
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    const snap = join(repoDir, 'snapshots', COMMIT);
    expect(readdirSync(snap).sort()).toEqual(readdirSync(fixture(REPOS['tiny/stories-sharded'])).sort());
    for (const f of readdirSync(snap))
      expect(
        readFileSync(join(snap, f)).equals(readFileSync(fixture(`${REPOS['tiny/stories-sharded']}/${f}`))),
        f,
      ).toBe(true);
    // The single-file name was asked for, answered 404, and remembered as absent.
    expect(existsSync(join(repoDir, '.no_exist', COMMIT, 'model.safetensors'))).toBe(true);
    expect(requests[0]).toBe('/tiny/stories-sharded/resolve/main/config.json');
    expect(requests.slice(1).every((u) => u.includes(`/resolve/${COMMIT}/`))).toBe(true);
    const shard = progress.filter((p) => p.file === 'model-00001-of-00002.safetensors');
    expect(shard[0]).toEqual({ file: 'model-00001-of-00002.safetensors', loaded: 0, total: 679_272 });
    expect(shard.at(-1)).toEqual({
      file: 'model-00001-of-00002.safetensors',
      loaded: 679_272,
      total: 679_272,
    });
    expect((await openCheckpoint(src)).weightFiles).toHaveLength(2);
    await src.close?.();

    requests.length = 0;
    const again = await openHubModel('tiny/stories-sharded', { endpoint, cache });
    expect(requests).toEqual([]);
    expect(again.name).toBe('tiny/stories-sharded');
    expect((await openCheckpoint(again)).bytes).toBe(1_040_128);
    await again.close?.();
  });

  it('openModelSource takes a Hub id and follows HF_ENDPOINT', async () => {
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = endpoint;
    try {
      requests.length = 0;
      const src = await openModelSource('tiny/gpt2', { cacheDir: cacheRoot });
      expect(requests.length).toBeGreaterThan(0);
      expect((await openCheckpoint(src)).spec.arch).toBe('gpt2');
      await src.close?.();
    } finally {
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
  });

  it('errors say what went wrong, and a cut download is not cached', async () => {
    const cache = new NodeHubCache(cacheRoot);
    await expect(openHubModel('tiny/nothing', { endpoint, cache })).rejects.toThrow(
      /tiny\/nothing: .*config.json not found \(no such repo or revision\?\)/,
    );
    await expect(openHubModel('tiny/gated', { endpoint, cache })).rejects.toThrow(
      /answered 401 \(gated or private repo\? set HF_TOKEN\)/,
    );
    await expect(openHubModel('tiny/broken', { endpoint, cache })).rejects.toThrow(
      /tiny\/broken: (download of model.safetensors failed|model.safetensors ended after)/,
    );
    const snap = join(cacheRoot, 'models--tiny--broken', 'snapshots', COMMIT);
    expect(existsSync(join(snap, 'model.safetensors'))).toBe(false);
    expect(readdirSync(snap).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
  });
});

describe.skipIf(!hasFixtures)('browser File list source', () => {
  it('matches dropped files by name and reads ranges with File.slice', async () => {
    const dir = 'models/stories260K-hf';
    const files = readdirSync(fixture(dir)).map((f) => new File([readFileSync(fixture(`${dir}/${f}`))], f));
    const src = new FileListSource(files, 'dropped');
    const cp = await openCheckpoint(src);
    expect(cp.spec.numLayers).toBe(5);
    expect(await src.readRange('model.safetensors', 0, 8)).toEqual(
      new Uint8Array(readFileSync(fixture(`${dir}/model.safetensors`)).subarray(0, 8)),
    );
    await expect(src.readText('nope.json')).rejects.toThrow(/dropped: nope.json not found/);
  });
});
