// Shown instead of the GPU panel when the worker found no WebGPU: what happened and how to fix it.
import { useEngine } from '../engine-context';
import { useStudio } from '../store';

export function WebGpuMissing() {
  const engine = useEngine();
  const error = useStudio((s) => s.gpu.error);
  const status = useStudio((s) => s.gpu.status);
  return (
    <section className="panel missing" role="alert" aria-labelledby="missing-h" data-testid="webgpu-missing">
      <div className="missing-icon" aria-hidden="true">
        ⚠
      </div>
      <div>
        <h2 id="missing-h">
          {status === 'unavailable' ? 'WebGPU is not available' : 'The GPU could not start'}
        </h2>
        <p>LoRA Studio trains on your graphics card through WebGPU, and this browser did not give it one.</p>
        {error && <p className="muted small">Reason: {error.message}</p>}
        {error?.advice && (
          <>
            <h3>How to enable it</h3>
            <p className="advice" data-testid="webgpu-advice">
              {error.advice}
            </p>
          </>
        )}
        <p className="muted small">
          You can still look around and prepare your settings; they are kept for your next visit.
        </p>
        <button type="button" className="btn" onClick={() => engine.probeGpu()}>
          Try again
        </button>
      </div>
    </section>
  );
}
