// End to end: build the studio, serve dist/, open it in headless Chromium (SwiftShader WebGPU), and check that
// the worker finds an adapter, the in-page matmul self-test passes, and a missing WebGPU gets a clear message.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
import { unzipFolder } from '../../src/lora/zip';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';
import type { StaticServer } from './serve';
import { serveStatic } from './serve';
import { TINY_ROWS } from '../helpers/tiny-dataset';

const ROOT = resolve(import.meta.dirname, '../..');
const SHOTS = join(ROOT, '.tmp');
// Its own output folder, so a developer's dist/ (or a parallel build) is left alone.
const OUT = join(ROOT, '.tmp', 'e2e-dist');

if (hasChromium && !hasFixtures) console.warn(`e2e training: ${NO_FIXTURES}`);

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

  // NOTE: a training step on SwiftShader is slow; 2 optimizer steps of batch 1 and max length 32 keep this short.
  it.skipIf(!hasFixtures)(
    'loads the fixture model and a dataset, trains 2 steps, and downloads the adapter zip',
    async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'lora-studio-e2e-data-'));
      const dataFile = join(tmp, 'tiny.jsonl');
      writeFileSync(
        dataFile,
        TINY_ROWS.map(([prompt, completion]) => JSON.stringify({ prompt, completion })).join('\n') + '\n',
      );
      const browser = await launch(WEBGPU_FLAGS);
      try {
        const page = await browser.context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        await page.goto(server.url);
        await page.getByTestId('selftest-verdict').waitFor({ timeout: 90_000 });

        const t0 = performance.now();
        await page
          .getByTestId('model-drop')
          .locator('input[type=file]')
          .setInputFiles(fixture('models/stories260K-hf'));
        await page.getByTestId('dataset-drop').locator('input[type=file]').setInputFiles(dataFile);
        const setNumber = async (label: string, value: string) => {
          const input = page.getByLabel(label, { exact: true });
          await input.fill(value);
          await input.press('Enter');
        };
        await setNumber('Max steps', '2');
        await setNumber('Batch size', '1');
        await setNumber('Grad accumulation', '1');
        await setNumber('Max length', '32');
        await setNumber('Epochs', '1');

        await page.getByRole('button', { name: 'Load', exact: true }).click();
        await page.getByTestId('dataset-report').waitFor({ timeout: 120_000 });
        const tLoad = performance.now() - t0;
        expect(await page.getByTestId('trainable-line').textContent()).toMatch(
          /^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: [\d.]+$/,
        );
        expect(await page.getByTestId('model-summary').textContent()).toContain('stories260K-hf');
        expect(await page.getByTestId('dataset-report').textContent()).toMatch(
          /prompt-completion.*8 of 8 rows/,
        );

        const start = page.getByRole('button', { name: 'Start training' });
        await expect.poll(() => start.isEnabled(), { timeout: 10_000 }).toBe(true);
        const t1 = performance.now();
        await start.click();
        const status = page.getByTestId('run-status');
        await expect
          .poll(() => status.getAttribute('data-status'), { timeout: 480_000, interval: 1000 })
          .toBe('done');
        const tTrain = performance.now() - t1;
        expect(await status.textContent()).toMatch(/Done: trained 2 steps/);
        expect(
          Number(await page.getByTestId('chart-loss').getAttribute('data-points')),
        ).toBeGreaterThanOrEqual(2);
        expect(await page.getByTestId('chart-loss').locator('svg .recharts-line').count()).toBeGreaterThan(0);

        const link = page.getByTestId('adapter-downloads').getByRole('button', { name: /Download adapter/ });
        await link.waitFor({ timeout: 60_000 });
        await page.screenshot({ path: join(SHOTS, 'e2e-trained.png'), fullPage: true });
        const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
        expect(download.suggestedFilename()).toMatch(/\.zip$/);
        expect(await download.failure()).toBeNull();
        const zipPath = join(tmp, download.suggestedFilename());
        await download.saveAs(zipPath);
        const { files } = unzipFolder(new Uint8Array(readFileSync(zipPath)));
        const config = files.find((f) => f.name === 'adapter_config.json');
        expect(config).toBeDefined();
        expect(JSON.parse(new TextDecoder().decode(config!.data))).toMatchObject({ peft_type: 'LORA' });
        expect(files.map((f) => f.name)).toContain('adapter_model.safetensors');
        // Base vs tuned: eval loss of the held-out row and a greedy continuation by each model.
        const t2 = performance.now();
        await page.getByRole('button', { name: 'Evaluate', exact: true }).click();
        const result = page.getByTestId('eval-result');
        await result.waitFor({ timeout: 120_000 });
        const tEval = performance.now() - t2;
        expect(await result.textContent()).toMatch(/eval loss \(tuned\)\s*\d/);
        await page.screenshot({ path: join(SHOTS, 'e2e-evaluated.png'), fullPage: true });
        console.log(`e2e: evaluate (loss + 2 greedy previews) in ${Math.round(tEval)} ms`);

        // A reload loses nothing: the run is listed from OPFS and, with the same model and dataset, resumes from its
        // last checkpoint (here the final one), so its adapter can be downloaded again.
        const t3 = performance.now();
        await page.reload();
        const saved = page.getByTestId('saved-run');
        await saved.first().waitFor({ timeout: 60_000 });
        expect(await saved.count()).toBe(1);
        expect(await saved.textContent()).toMatch(/stories260K-hf · tiny\.jsonl · step 2 of 2/);
        await page.getByTestId('selftest-verdict').waitFor({ timeout: 90_000 });
        await page
          .getByTestId('model-drop')
          .locator('input[type=file]')
          .setInputFiles(fixture('models/stories260K-hf'));
        await page.getByTestId('dataset-drop').locator('input[type=file]').setInputFiles(dataFile);
        await page.getByRole('button', { name: 'Load', exact: true }).click();
        await page.getByTestId('dataset-report').waitFor({ timeout: 120_000 });
        const resume = saved.getByRole('button', { name: 'Resume' });
        await expect.poll(() => resume.isEnabled(), { timeout: 10_000 }).toBe(true);
        await resume.click();
        await expect
          .poll(() => status.getAttribute('data-status'), { timeout: 120_000, interval: 500 })
          .toBe('done');
        await link.waitFor({ timeout: 60_000 });
        await page.screenshot({ path: join(SHOTS, 'e2e-resumed-after-reload.png'), fullPage: true });
        console.log(
          `e2e: reload, reload model and data, resume the saved run in ${Math.round(performance.now() - t3)} ms`,
        );
        console.log(
          `e2e: load ${Math.round(tLoad)} ms, 2 training steps to "done" in ${Math.round(tTrain)} ms (SwiftShader)`,
        );
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
        rmSync(tmp, { recursive: true, force: true });
      }
    },
    600_000,
  );

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
