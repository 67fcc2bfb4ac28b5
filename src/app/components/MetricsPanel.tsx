// Live charts of the run (loss, grad norm, learning rate, throughput) and of GPU memory.
import { useStudio } from '../store';
import { formatBytes } from '../format';
import { MetricChart } from './MetricChart';

export function MetricsPanel() {
  const points = useStudio((s) => s.metrics.points);
  const memory = useStudio((s) => s.metrics.memory);
  const empty = 'Starts with the first training step';
  return (
    <section className="panel metrics" aria-labelledby="metrics-h">
      <h2 id="metrics-h">Live metrics</h2>
      <div className="charts">
        <MetricChart
          title="GPU memory"
          data={memory}
          x="t"
          xLabel="s"
          lines={[
            // The first line gives the headline number: the peak is what decides whether a model fits.
            { key: 'peakBytes', name: 'peak', color: 'var(--accent-2)', dashed: true },
            { key: 'liveBytes', name: 'live', color: 'var(--accent)' },
          ]}
          format={formatBytes}
          empty="Fills in when the GPU self-test runs"
          testId="chart-memory"
        />
        <MetricChart
          title="Loss"
          data={points}
          x="step"
          lines={[{ key: 'loss', name: 'loss', color: 'var(--accent)' }]}
          empty={empty}
          testId="chart-loss"
        />
        <MetricChart
          title="Grad norm"
          data={points}
          x="step"
          lines={[{ key: 'grad_norm', name: 'grad norm', color: 'var(--accent-3)' }]}
          empty={empty}
        />
        <MetricChart
          title="Learning rate"
          data={points}
          x="step"
          lines={[{ key: 'learning_rate', name: 'lr', color: 'var(--accent-2)' }]}
          empty={empty}
        />
        <MetricChart
          title="Throughput (tokens/s)"
          data={points}
          x="step"
          lines={[{ key: 'tokens_per_sec', name: 'tokens/s', color: 'var(--accent-4)' }]}
          empty={empty}
        />
      </div>
    </section>
  );
}
