// Page entry: the store, the GPU worker, and the React tree.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { createWorkerEngine } from './engine';
import { EngineContext } from './engine-context';
import { studioStore } from './store';
import './styles.css';

const engine = createWorkerEngine(studioStore);
engine.probeGpu();
// Checkpoints outlive the page: list them at once, so a reload can resume what was trained.
engine.listRuns();

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <EngineContext.Provider value={engine}>
      <App />
    </EngineContext.Provider>
  </StrictMode>,
);
