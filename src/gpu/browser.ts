// Browser (page or worker): a WebGPU device from navigator.gpu, with shaders bundled by Vite.
import { acquireDevice, WebGpuUnavailableError } from './acquire';
import { GpuContext } from './context';
import type { ShaderSource } from './context';

const sources = import.meta.glob('../../shaders/*.wgsl', {
  query: '?raw',
  import: 'default',
  eager: true,
}) as Record<string, string>;

export const browserShaderSource: ShaderSource = (name) => {
  const code = sources[`../../shaders/${name}.wgsl`];
  if (code === undefined) throw new Error(`shader not bundled: shaders/${name}.wgsl`);
  return code;
};

export const BROWSER_ADVICE =
  'Use a recent Chrome or Edge (113 or later) on a machine with a GPU. If WebGPU is still off, open chrome://flags, ' +
  'enable "Unsafe WebGPU Support" (#enable-unsafe-webgpu), restart the browser, and check chrome://gpu. On Linux, ' +
  'also enable Vulkan (#enable-vulkan). Firefox Nightly and Safari Technology Preview have WebGPU behind settings.';

export async function createBrowserGpu(): Promise<GpuContext> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu)
    throw new WebGpuUnavailableError(
      'This browser does not expose WebGPU (navigator.gpu is missing).',
      BROWSER_ADVICE,
    );
  if (!globalThis.isSecureContext) {
    throw new WebGpuUnavailableError(
      'WebGPU needs a secure context.',
      'Open the studio over https or from localhost.',
    );
  }
  const { device, report } = await acquireDevice(gpu, 'browser', BROWSER_ADVICE);
  return new GpuContext(device, report, browserShaderSource);
}
