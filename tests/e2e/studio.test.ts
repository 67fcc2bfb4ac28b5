// End to end: build the studio, serve dist/, open it in headless Chromium (SwiftShader WebGPU), and check that
// the worker finds an adapter, the in-page matmul self-test passes, and a missing WebGPU gets a clear message.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import {
  CHROMIUM,
  DELETE_GPU_IN_WORKER,
  NO_ADAPTER_FLAGS,
  WEBGPU_FLAGS,
  hasChromium,
  launch,
} from './chromium';
import type { StaticServer } from './serve';
import { serveStatic } from './serve';

const ROOT = resolve(import.meta.dirname, '../..');
const SHOTS = join(ROOT, '.tmp');
// Its own output folder, so a developer's dist/ (or a parallel build) is left alone.
const OUT = join(ROOT, '.tmp', 'e2e-dist');

if (!hasChromium) console.warn(`e2e skipped: no Chromium at ${CHROMIUM} (set CHROMIUM_PATH to use another)`);

describe.skipIf(!hasChromium)('studio in Chromium', () => {
  let server: StaticServer;

  beforeAll(async () => {
    const t0 = performance.now();
    await build({
      root: ROOT,
      configFile: join(ROOT, 'vite.config.ts'),
      logLevel: 'warn',
      build: { outDir: OUT, emptyOutDir: true },
    });
    server = await serveStatic(OUT);
    console.log(`e2e: built and serving in ${Math.round(performance.now() - t0)} ms at ${server.url}`);
    mkdirSync(SHOTS, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await server?.close();
  });

  it('finds the SwiftShader adapter and passes the matmul self-test', async () => {
    const browser = await launch(WEBGPU_FLAGS);
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      const t0 = performance.now();
      await page.goto(server.url);
      await expect.poll(() => page.getByRole('heading', { name: 'LoRA Studio' }).count()).toBe(1);

      const adapter = page.getByTestId('adapter-name');
      await adapter.waitFor({ timeout: 60_000 });
      const name = (await adapter.textContent()) ?? '';
      const details = (await page.locator('.gpu-panel').textContent()) ?? '';
      expect(`${name} ${details}`.toLowerCase()).toContain('swiftshader');

      const verdict = page.getByTestId('selftest-verdict');
      await verdict.waitFor({ timeout: 90_000 });
      const tSelfTest = performance.now() - t0;
      expect(await verdict.getAttribute('data-passed')).toBe('true');
      expect(await verdict.textContent()).toContain('passed');
      const maxErr = Number(await page.getByTestId('selftest-maxerr').textContent());
      expect(maxErr).toBeLessThan(1e-4);
      const gflops = parseFloat((await page.getByTestId('selftest-gflops').textContent()) ?? '');
      expect(gflops).toBeGreaterThan(0);

      // recharts is live from the start: the GPU memory chart has the self-test's pool samples.
      const memChart = page.getByTestId('chart-memory');
      expect(Number(await memChart.getAttribute('data-points'))).toBeGreaterThan(2);
      expect(await memChart.locator('svg .recharts-line').count()).toBeGreaterThan(0);

      // Start stays disabled, saying why, until the worker reports a loaded model.
      const start = page.getByRole('button', { name: 'Start training' });
      expect(await start.isDisabled()).toBe(true);
      expect(await page.getByTestId('start-wrap').getAttribute('title')).toMatch(/engine is not loaded/i);
      expect(await page.getByText('WebGPU is not available').count()).toBe(0);

      // Settings persist per field: change r, reload, and it is still there.
      await page.getByLabel('Rank r').fill('32');
      await page.reload();
      await page.getByTestId('adapter-name').waitFor({ timeout: 60_000 });
      expect(await page.getByLabel('Rank r').inputValue()).toBe('32');
      await page.getByTestId('selftest-verdict').waitFor({ timeout: 90_000 });

      await page.screenshot({ path: join(SHOTS, 'e2e-studio.png'), fullPage: true });
      await page.setViewportSize({ width: 420, height: 900 });
      await page.screenshot({ path: join(SHOTS, 'e2e-studio-narrow.png'), fullPage: true });
      console.log(`e2e: adapter "${name}", self-test in ${Math.round(tSelfTest)} ms, ${gflops} GFLOP/s`);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 240_000);

  // The message and its advice, with the rest of the studio still there to prepare a run.
  async function expectMissingPanel(page: Page, shot: string, reason: RegExp): Promise<void> {
    const panel = page.getByTestId('webgpu-missing');
    await panel.waitFor({ timeout: 60_000 });
    expect(await panel.getByRole('heading', { name: 'WebGPU is not available' }).count()).toBe(1);
    expect(await panel.textContent()).toMatch(reason);
    expect(await page.getByTestId('webgpu-advice').textContent()).toMatch(/chrome:\/\/flags/);
    expect(await page.getByTestId('gpu-badge').textContent()).toContain('WebGPU unavailable');
    expect(await page.getByRole('heading', { name: 'Training' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Start training' }).isDisabled()).toBe(true);
    await page.screenshot({ path: join(SHOTS, shot), fullPage: true });
  }

  it('shows a clear message, not a blank page, when there is no GPU adapter', async () => {
    const browser = await launch(NO_ADAPTER_FLAGS);
    try {
      const page = await browser.context.newPage();
      await page.goto(server.url);
      await expectMissingPanel(page, 'e2e-no-webgpu.png', /no GPU adapter was found/);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('shows a clear message when the browser has no navigator.gpu', async () => {
    const browser = await launch(WEBGPU_FLAGS);
    try {
      const page = await browser.context.newPage();
      // The worker owns the device, so navigator.gpu is removed there (a page init script would not reach it).
      await page.route(/\/assets\/worker-[^/]*\.js$/, async (route) => {
        const res = await route.fetch();
        await route.fulfill({ response: res, body: DELETE_GPU_IN_WORKER + (await res.text()) });
      });
      await page.goto(server.url);
      await expectMissingPanel(page, 'e2e-no-navigator-gpu.png', /navigator\.gpu is missing/);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
