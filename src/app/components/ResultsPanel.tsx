// After (or between) training: the trainer's advice, base-vs-tuned evaluation, and the files to download.
import { useId, useState } from 'react';
import { useEngine } from '../engine-context';
import { formatBytes } from '../format';
import { useStudio } from '../store';
import type { ExportedFile } from '../../worker/protocol';

function AdviceList() {
  const advice = useStudio((s) => s.engine.advice);
  if (advice.length === 0) return null;
  return (
    <div className="group">
      <h3>Advice</h3>
      <ul className="advice-list" data-testid="advice-list">
        {advice.map((a, i) => (
          <li key={i}>{a}</li>
        ))}
      </ul>
    </div>
  );
}

function Evaluation() {
  const engine = useEngine();
  const id = useId();
  const [prompt, setPrompt] = useState('');
  const ev = useStudio((s) => s.engine.evaluation);
  const r = ev.result;
  return (
    <div className="group">
      <h3>Evaluate</h3>
      <div className="field">
        <label className="field-label" htmlFor={id}>
          Prompt for the preview
        </label>
        <div className="inline">
          <input
            id={id}
            type="text"
            placeholder="Empty: the first prompt of the dataset"
            value={prompt}
            onChange={(e) => setPrompt(e.currentTarget.value)}
          />
          <button
            type="button"
            className="btn"
            disabled={ev.status === 'running'}
            onClick={() => engine.evaluate(prompt)}
          >
            {ev.status === 'running' ? 'Evaluating…' : 'Evaluate'}
          </button>
        </div>
      </div>
      {r && (
        <div data-testid="eval-result">
          <dl className="stats">
            <div>
              <dt>{r.split} loss (tuned)</dt>
              <dd>{r.loss.toFixed(4)}</dd>
            </div>
            <div>
              <dt>perplexity (tuned)</dt>
              <dd>{r.ppl.toFixed(2)}</dd>
            </div>
            <div>
              <dt>{r.split} loss (base)</dt>
              <dd>{r.baseLoss.toFixed(4)}</dd>
            </div>
            <div>
              <dt>perplexity (base)</dt>
              <dd>{r.basePpl.toFixed(2)}</dd>
            </div>
          </dl>
          <p className="muted small">
            {r.examples} {r.split === 'eval' ? 'held-out' : 'training'} example{r.examples === 1 ? '' : 's'},{' '}
            {r.tokens} scored tokens.
          </p>
          <div className="compare">
            <div>
              <h4>Base</h4>
              <p>
                <span className="prompt">{r.prompt}</span>
                {r.base}
              </p>
            </div>
            <div>
              <h4>Tuned</h4>
              <p>
                <span className="prompt">{r.prompt}</span>
                {r.tuned}
              </p>
            </div>
          </div>
        </div>
      )}
    </div>
  );
}

/** Hands bytes to the browser's download manager (a temporary link; the URL is revoked once the download began). */
function saveFile(f: ExportedFile): void {
  const url = URL.createObjectURL(new Blob([f.data]));
  const a = document.createElement('a');
  a.href = url;
  a.download = f.name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function FileButtons({ files, testId }: { files: readonly ExportedFile[]; testId: string }) {
  return (
    <ul className="downloads" data-testid={testId}>
      {files.map((f, i) => (
        <li key={f.name}>
          <button
            type="button"
            className={i === 0 && f.name.endsWith('.zip') ? 'btn btn-primary' : 'btn btn-small'}
            onClick={() => saveFile(f)}
          >
            {i === 0 && f.name.endsWith('.zip') ? `Download adapter (${f.name})` : f.name}
          </button>{' '}
          <span className="muted small">{formatBytes(f.data.byteLength)}</span>
        </li>
      ))}
    </ul>
  );
}

function Downloads() {
  const engine = useEngine();
  const ex = useStudio((s) => s.engine.exports);
  return (
    <div className="group">
      <h3>Download</h3>
      {ex.adapter.length > 0 ? (
        <FileButtons files={ex.adapter} testId="adapter-downloads" />
      ) : (
        <p className="muted small">{ex.pending === 'adapter' ? 'Packing the adapter…' : 'No adapter yet.'}</p>
      )}
      <p className="muted small">
        A PEFT adapter: load it with <code>PeftModel.from_pretrained(base, folder)</code>. Or merge it into
        the base weights for a standalone model:
      </p>
      <button
        type="button"
        className="btn"
        disabled={ex.pending !== null || ex.adapter.length === 0}
        onClick={() => engine.exportFiles('merged')}
      >
        {ex.pending === 'merged' ? 'Merging…' : 'Build merged model'}
      </button>
      {ex.merged.length > 0 && <FileButtons files={ex.merged} testId="merged-downloads" />}
    </div>
  );
}

export function ResultsPanel() {
  const status = useStudio((s) => s.engine.runStatus);
  const hasAdvice = useStudio((s) => s.engine.advice.length > 0);
  const finished = status === 'done' || status === 'paused';
  if (!finished && !hasAdvice) return null;
  return (
    <section className="panel" aria-labelledby="results-h">
      <h2 id="results-h">Results</h2>
      <AdviceList />
      {finished && <Evaluation />}
      {finished && <Downloads />}
    </section>
  );
}
