// Title bar with the GPU status badge.
import { useStudio } from '../store';
import type { GpuState } from '../store/gpu-slice';
import { adapterName } from './adapter-name';

function badge(gpu: GpuState): { tone: 'ok' | 'warn' | 'bad' | 'busy'; text: string } {
  switch (gpu.status) {
    case 'probing':
      return { tone: 'busy', text: 'Looking for a GPU…' };
    case 'unavailable':
      return { tone: 'bad', text: 'WebGPU unavailable' };
    case 'error':
      return { tone: 'bad', text: 'GPU error' };
    case 'ready': {
      const name = gpu.report ? adapterName(gpu.report) : 'GPU';
      const st = gpu.selfTest.status;
      if (st === 'failed' || st === 'error') return { tone: 'warn', text: `${name} · self-test failed` };
      if (st === 'passed') return { tone: 'ok', text: name };
      return { tone: 'busy', text: `${name} · testing…` };
    }
    default:
      return gpu.status satisfies never;
  }
}

export function Header() {
  const gpu = useStudio((s) => s.gpu);
  const b = badge(gpu);
  return (
    <header className="header">
      <div className="brand">
        <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width={28} height={28} />
        <h1>LoRA Studio</h1>
        <span className="tagline">Fine-tune language models on your own GPU</span>
      </div>
      <span className={`badge badge-${b.tone}`} role="status" aria-live="polite" data-testid="gpu-badge">
        <span className="dot" aria-hidden="true" />
        {b.text}
      </span>
    </header>
  );
}
