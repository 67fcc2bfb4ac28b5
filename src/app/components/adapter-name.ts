// A readable adapter name from what the browser reports (often only vendor and architecture).
import type { GpuReport } from '../../gpu/acquire';

export function adapterName(r: GpuReport): string {
  const a = r.adapter;
  const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ');
  return name || 'Unnamed adapter';
}
