// Node: a WebGPU device from the `webgpu` package (Dawn). Falls back to SwiftShader where the machine has no GPU.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { acquireDevice, WebGpuUnavailableError } from './acquire';
import { GpuContext } from './context';
import type { ShaderSource } from './context';
import type * as WebGpuNs from 'webgpu';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const shaderDir = fileURLToPath(new URL('../../shaders/', import.meta.url));
const shaderCache = new Map<string, string>();

/** Reads shaders/NAME.wgsl from disk, once. */
export const nodeShaderSource: ShaderSource = (name) => {
  let code = shaderCache.get(name);
  if (code === undefined) {
    const path = `${shaderDir}${name}.wgsl`;
    if (!existsSync(path)) throw new Error(`shader not found: ${path}`);
    code = readFileSync(path, 'utf8');
    shaderCache.set(name, code);
  }
  return code;
};

type WebGpuModule = typeof WebGpuNs;

const liveInstances = new Set<GPU>();

export interface NodeGpuOptions {
  /** Lower the main thread to nice 19 once the driver's workers exist (default true; see below). */
  yieldMainThread?: boolean;
}

const NODE_ADVICE =
  "Install a Vulkan driver for your GPU, or Debian's `chromium` package (its SwiftShader CPU driver), and `libvulkan1`; then retry. " +
  `With SwiftShader, set VK_ICD_FILENAMES=${SWIFTSHADER_ICD}.`;

export async function createNodeGpu(options: NodeGpuOptions = {}): Promise<GpuContext> {
  // Where no Vulkan driver is configured and Chromium's SwiftShader is installed, use it (tests and CPU-only machines).
  if (
    !process.env.VK_ICD_FILENAMES &&
    !process.env.VK_DRIVER_FILES &&
    existsSync(SWIFTSHADER_ICD) &&
    !hasGpuDeviceNode()
  ) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  let mod: WebGpuModule;
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new WebGpuUnavailableError(
      `the \`webgpu\` package could not be loaded: ${(e as Error).message}`,
      'Run `npm ci`.',
    );
  }
  Object.assign(globalThis, mod.globals);
  // NOTE: the Dawn instance must outlive its devices; if it is garbage-collected, the driver's threads crash.
  const gpu = mod.create([]);
  liveInstances.add(gpu);
  const { device, report } = await acquireDevice(gpu, 'node', NODE_ADVICE);
  const ctx = new GpuContext(device, report, nodeShaderSource);
  if (options.yieldMainThread ?? true) await yieldMainThread(ctx);
  return ctx;
}

/** True when the machine exposes a GPU device node (a DRM render node or NVIDIA's device). */
function hasGpuDeviceNode(): boolean {
  if (existsSync('/dev/nvidia0')) return true;
  return existsSync('/dev/dri') && readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
}

/**
 * NOTE: the `webgpu` package's main thread busy-polls one core. Once a first pipeline has started the driver's
 * worker threads, lowering the calling thread alone to nice 19 (on Linux setpriority acts per thread, and threads
 * made later inherit it) lets a CPU driver such as SwiftShader use every core.
 */
async function yieldMainThread(ctx: GpuContext): Promise<void> {
  const t = ctx.zeros([64], 'f32', 'warm-up');
  ctx.dispatch({ shader: 'util', entry: 'warm_up', bindings: ['rw'] }, { bindings: [t], workgroups: [1] });
  await ctx.sync();
  t.dispose();
  try {
    setPriority(19);
  } catch {
    // Not permitted on some systems; only speed is affected.
  }
}
