// The studio frame: header, GPU status (or how to enable WebGPU), training setup, live metrics.
import { GpuPanel } from './components/GpuPanel';
import { Header } from './components/Header';
import { MetricsPanel } from './components/MetricsPanel';
import { ResultsPanel } from './components/ResultsPanel';
import { TrainingPanel } from './components/TrainingPanel';
import { WebGpuMissing } from './components/WebGpuMissing';
import { useStudio } from './store';

export function App() {
  const status = useStudio((s) => s.gpu.status);
  const missing = status === 'unavailable' || status === 'error';
  return (
    <div className="app">
      <Header />
      <main className="layout">
        {missing ? <WebGpuMissing /> : <GpuPanel />}
        <div className="columns">
          <TrainingPanel />
          <div className="stack">
            <MetricsPanel />
            <ResultsPanel />
          </div>
        </div>
      </main>
      <footer className="footer">
        Your data and weights stay on this machine: training runs on your GPU, in this tab.
      </footer>
    </div>
  );
}
