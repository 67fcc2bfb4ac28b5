// Adapter and device acquisition shared by the browser and Node: ask for the adapter's own limits and useful features.

/** Limits requested at the adapter's own maximum: the WebGPU defaults are far too small for real models. */
export const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

/** Optional features that help when present; none is required. */
export const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

export interface GpuReport {
  runtime: 'browser' | 'node';
  adapter: AdapterDescription;
  /** Limits granted to the device (all of them, by name). */
  limits: Record<string, number>;
  /** Features enabled on the device. */
  features: string[];
  /** Features the adapter offers (a superset of `features`). */
  adapterFeatures: string[];
}

/** Thrown when WebGPU is missing or no adapter is found; `advice` says what the user can do. */
export class WebGpuUnavailableError extends Error {
  constructor(
    message: string,
    readonly advice: string,
  ) {
    super(message);
    this.name = 'WebGpuUnavailableError';
  }
}

export interface AcquiredDevice {
  device: GPUDevice;
  report: GpuReport;
}

function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: Boolean(info?.isFallbackAdapter),
  };
}

function limitsRecord(limits: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  // GPUSupportedLimits exposes its values as prototype getters, so walk the prototype chain.
  for (let o: object | null = limits; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      const v = (limits as unknown as Record<string, unknown>)[key];
      if (typeof v === 'number' && !(key in out)) out[key] = v;
    }
  }
  return out;
}

export async function acquireDevice(
  gpu: GPU,
  runtime: GpuReport['runtime'],
  advice: string,
  powerPreference: GPUPowerPreference = 'high-performance',
): Promise<AcquiredDevice> {
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) throw new WebGpuUnavailableError('WebGPU is available but no GPU adapter was found.', advice);
  const requiredLimits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({
    label: 'lora-studio',
    requiredLimits,
    requiredFeatures,
  });
  return {
    device,
    report: {
      runtime,
      adapter: describeAdapter(adapter),
      limits: limitsRecord(device.limits),
      features: [...device.features].sort(),
      adapterFeatures: [...adapter.features].sort(),
    },
  };
}

/** A plain-text report of adapter, limits and features, for the CLI and logs. */
export function formatReport(r: GpuReport): string {
  const a = r.adapter;
  const name =
    [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') ||
    '(adapter gave no name)';
  const lines = [
    `runtime:   ${r.runtime}`,
    `adapter:   ${name}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}`,
    `features:  ${r.features.join(', ') || '(none)'}`,
    `limits:`,
    ...Object.keys(r.limits)
      .sort()
      .map((k) => `  ${k.padEnd(44)} ${r.limits[k].toLocaleString('en-US')}`),
  ];
  return lines.join('\n');
}
