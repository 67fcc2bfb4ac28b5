// Headless Debian Chromium with WebGPU on SwiftShader (no GPU needed); never a downloaded browser.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

const BASE_FLAGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--headless=new',
];

export const WEBGPU_FLAGS = [
  ...BASE_FLAGS,
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--enable-unsafe-swiftshader',
];

/**
 * A machine without a usable GPU: navigator.gpu exists but requestAdapter() gives null.
 * NOTE: --disable-blink-features=WebGPU does not remove navigator.gpu on a secure http origin in Chromium 156.
 */
export const NO_ADAPTER_FLAGS = [...BASE_FLAGS, '--disable-gpu'];

/** Prepended to the worker script: a browser without navigator.gpu at all (where the device is acquired). */
export const DELETE_GPU_IN_WORKER = 'delete Object.getPrototypeOf(navigator).gpu;\n';

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A persistent context, so that the profile lives in a fresh temp --user-data-dir we delete afterwards. */
export async function launch(args: string[]): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), 'lora-studio-e2e-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: { width: 1360, height: 1000 },
    // Downloads land in a temp folder Playwright manages (the studio's export buttons are checked through them).
    acceptDownloads: true,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
