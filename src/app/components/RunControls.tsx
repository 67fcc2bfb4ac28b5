// Start / Pause / Resume / Stop, the run's status line and progress, and the engine's last error as a readable notice.
import { useEngine } from '../engine-context';
import { formatBytes, formatCompact, formatDuration } from '../format';
import { startBlocker, useStudio } from '../store';
import type { StudioState } from '../store';

/** One line that says where the run is: what the user reads first. */
export function runStatusLine(s: StudioState): string {
  const e = s.engine;
  const run = e.run;
  const last = s.metrics.runId === e.runId ? s.metrics.points.at(-1) : undefined;
  const steps = run ? `step ${run.step} of ${run.totalSteps}` : '';
  const detail = last
    ? ` · loss ${last.loss.toFixed(4)} · ${formatCompact(last.tokens_per_sec)} tokens/s` +
      (last.eta !== undefined && e.runStatus === 'running' ? ` · ${formatDuration(last.eta)} left` : '')
    : '';
  switch (e.runStatus) {
    case 'idle':
      return e.loading ? 'Loading the model…' : 'No run yet.';
    case 'starting':
      return 'Preparing the dataset and the adapter…';
    case 'running':
      return run?.resumedFrom && run.step === 0
        ? `Resuming from ${run.resumedFrom}…`
        : `Training: ${steps}${detail}`;
    case 'pausing':
      return `Pausing after this step (a checkpoint is saved): ${steps}`;
    case 'paused':
      return `Paused at ${steps}${run?.checkpoint ? `; checkpoint at step ${run.checkpoint.step} saved` : ''}.`;
    case 'stopping':
      return `Stopping after this step: ${steps}`;
    case 'done':
      if (run?.reason === 'diverged') return `Diverged: ${run.message ?? ''}`;
      return `${run?.reason === 'stopped' ? 'Stopped' : 'Done'}: ${run?.message ?? `trained ${run?.step ?? 0} steps`}${detail}`;
    case 'failed':
      return `Failed at ${steps || 'the start'}: ${e.lastError?.message ?? 'see the message above'}`;
    default:
      return e.runStatus satisfies never;
  }
}

function ProgressBar() {
  const progress = useStudio((s) => s.engine.progress);
  if (!progress || progress.total <= 0) return null;
  const pct = Math.min(100, (100 * progress.done) / progress.total);
  const label =
    progress.phase === 'train'
      ? `${progress.done} / ${progress.total} steps`
      : `${progress.phase} ${progress.phase === 'tokenize' || progress.phase === 'download' || progress.phase === 'upload weights' ? `${formatBytes(progress.done)} / ${formatBytes(progress.total)}` : `${progress.done} / ${progress.total}`}`;
  return (
    <div className="progress" data-testid="run-progress">
      <progress max={100} value={pct} aria-label={label} />
      <span className="muted small">{label}</span>
    </div>
  );
}

export function RunControls() {
  const engine = useEngine();
  const blocker = useStudio(startBlocker);
  const status = useStudio((s) => s.engine.runStatus);
  const line = useStudio(runStatusLine);
  const error = useStudio((s) => s.engine.lastError);
  const dismiss = useStudio((s) => s.engineErrorDismissed);
  const reset = useStudio((s) => s.settingsReset);
  return (
    <div className="start">
      {/* A disabled button gets no hover events, so the tooltip sits on a wrapper. */}
      <span className="tooltip-wrap" title={blocker ?? 'Start training'} data-testid="start-wrap">
        <button
          type="button"
          className="btn btn-primary"
          disabled={blocker !== null}
          aria-describedby="start-why"
          onClick={() => engine.startRun()}
        >
          Start training
        </button>
      </span>
      {(status === 'running' || status === 'pausing') && (
        <button
          type="button"
          className="btn"
          disabled={status === 'pausing'}
          onClick={() => engine.pauseRun()}
        >
          Pause
        </button>
      )}
      {status === 'paused' && (
        <button type="button" className="btn" onClick={() => engine.resumeRun()}>
          Resume
        </button>
      )}
      {(status === 'running' || status === 'paused' || status === 'pausing') && (
        <button type="button" className="btn" onClick={() => engine.stopRun()}>
          Stop
        </button>
      )}
      <button type="button" className="btn btn-ghost" onClick={reset}>
        Reset settings
      </button>
      <p id="start-why" className="muted small" aria-live="polite">
        {blocker ?? 'Ready.'}
      </p>
      <p className="run-status" data-testid="run-status" data-status={status} aria-live="polite">
        {line}
      </p>
      <ProgressBar />
      {error && (
        <div className="notice" role="alert" data-testid="engine-error">
          <strong>{error.message}</strong>
          {error.advice && <span> {error.advice}</span>}
          <button type="button" className="btn btn-small btn-ghost" onClick={dismiss} aria-label="Dismiss">
            ✕
          </button>
        </div>
      )}
    </div>
  );
}
