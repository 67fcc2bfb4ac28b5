// The adapter the worker found: name, the limits that bound model size, optional features, the self-test.
import { useEngine } from '../engine-context';
import { formatBytes, formatSci } from '../format';
import { useStudio } from '../store';
import { adapterName } from './adapter-name';

const LIMITS: readonly { key: string; label: string; hint: string }[] = [
  { key: 'maxBufferSize', label: 'Max buffer', hint: 'Largest single GPU buffer' },
  {
    key: 'maxStorageBufferBindingSize',
    label: 'Max storage binding',
    hint: 'Largest tensor one shader can see at once',
  },
  {
    key: 'maxComputeWorkgroupStorageSize',
    label: 'Workgroup memory',
    hint: 'Shared memory per workgroup (tile sizes)',
  },
];

const FEATURES: readonly { key: string; hint: string }[] = [
  { key: 'shader-f16', hint: 'Half-precision weights and math' },
  { key: 'subgroups', hint: 'Faster reductions' },
  { key: 'timestamp-query', hint: 'Per-kernel GPU timing' },
];

function SelfTest() {
  const engine = useEngine();
  const st = useStudio((s) => s.gpu.selfTest);
  const r = st.result;
  return (
    <section className="card selftest" aria-labelledby="selftest-h" data-testid="selftest">
      <div className="card-head">
        <h3 id="selftest-h">Matmul self-test</h3>
        <button
          type="button"
          className="btn btn-small"
          onClick={() => engine.runSelfTest()}
          disabled={st.status === 'running'}
        >
          Run again
        </button>
      </div>
      {st.status === 'idle' && <p className="muted">Waiting for the GPU…</p>}
      {st.status === 'running' && (
        <p className="muted" aria-live="polite">
          <span className="spinner" aria-hidden="true" /> Multiplying odd-shaped matrices on the GPU…
        </p>
      )}
      {st.status === 'error' && st.error && (
        <p className="verdict verdict-bad" data-testid="selftest-verdict">
          Self-test could not run: {st.error.message}
        </p>
      )}
      {r && (
        <>
          <p
            className={`verdict ${r.passed ? 'verdict-ok' : 'verdict-bad'}`}
            data-testid="selftest-verdict"
            data-passed={r.passed}
          >
            {r.passed ? '✓ Self-test passed' : '✗ Self-test failed'}
          </p>
          <dl className="stats">
            <div>
              <dt>Max error</dt>
              <dd data-testid="selftest-maxerr">{formatSci(r.maxAbsError)}</dd>
            </div>
            <div>
              <dt>Throughput</dt>
              <dd data-testid="selftest-gflops">{r.gflops.toFixed(2)} GFLOP/s</dd>
            </div>
            <div>
              <dt>Time</dt>
              <dd>{Math.round(r.ms)} ms</dd>
            </div>
          </dl>
          <table className="cases">
            <caption className="sr-only">Self-test cases</caption>
            <thead>
              <tr>
                <th scope="col">M×K×N</th>
                <th scope="col">max |err|</th>
                <th scope="col">bound</th>
                <th scope="col">ok</th>
              </tr>
            </thead>
            <tbody>
              {r.cases.map((c) => (
                <tr key={`${c.M}x${c.K}x${c.N}${c.transB ? 't' : ''}`}>
                  <td>
                    {c.M}×{c.K}×{c.N}
                    {c.transB ? ' (Bᵀ)' : ''}
                  </td>
                  <td>{formatSci(c.maxAbsError)}</td>
                  <td>{formatSci(c.tolerance)}</td>
                  <td aria-label={c.passed ? 'passed' : 'failed'}>{c.passed ? '✓' : '✗'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted small">
            Timed: {r.timedShape.join('×')} matmul. Peak pool memory {formatBytes(r.pool.peakBytes)}.
          </p>
        </>
      )}
    </section>
  );
}

export function GpuPanel() {
  const gpu = useStudio((s) => s.gpu);
  const report = gpu.report;
  return (
    <section className="panel gpu-panel" aria-labelledby="gpu-h">
      <h2 id="gpu-h">GPU</h2>
      {!report ? (
        <p className="muted" aria-live="polite">
          <span className="spinner" aria-hidden="true" /> Asking the browser for a WebGPU adapter…
        </p>
      ) : (
        <div className="gpu-grid">
          <section className="card" aria-labelledby="adapter-h">
            <h3 id="adapter-h">Adapter</h3>
            <p className="adapter-name" data-testid="adapter-name">
              {adapterName(report)}
            </p>
            <p className="muted small">
              {[report.adapter.vendor, report.adapter.architecture].filter(Boolean).join(' · ') || '—'}
              {report.adapter.isFallbackAdapter ? ' · software fallback' : ''}
            </p>
            <dl className="limits">
              {LIMITS.map((l) => (
                <div key={l.key} title={l.hint}>
                  <dt>{l.label}</dt>
                  <dd>{report.limits[l.key] !== undefined ? formatBytes(report.limits[l.key]) : '—'}</dd>
                </div>
              ))}
            </dl>
            <ul className="features" aria-label="Optional features">
              {FEATURES.map((f) => {
                const on = report.features.includes(f.key);
                return (
                  <li key={f.key} className={on ? 'chip chip-on' : 'chip chip-off'} title={f.hint}>
                    <span aria-hidden="true">{on ? '✓' : '–'}</span> {f.key}
                    <span className="sr-only">{on ? ' available' : ' not available'}</span>
                  </li>
                );
              })}
            </ul>
          </section>
          <SelfTest />
        </div>
      )}
    </section>
  );
}
