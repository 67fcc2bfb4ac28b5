// The runs whose checkpoints the browser keeps: after a reload, Resume continues one and Delete frees its storage.
import { useState } from 'react';
import type { SavedRun } from '../../worker/protocol';
import { useEngine } from '../engine-context';
import { resumeBlocker, useStudio } from '../store';
import { isRunActive } from '../store/engine-slice';

function progressOf(run: SavedRun): string {
  if (run.step === null) return 'no checkpoint yet';
  return run.totalSteps ? `step ${run.step} of ${run.totalSteps}` : `step ${run.step}`;
}

function SavedRunRow({ run }: { run: SavedRun }) {
  const engine = useEngine();
  const blocker = useStudio((s) => resumeBlocker(s, run));
  // The run training right now cannot be deleted under the trainer's feet.
  const inUse = useStudio((s) => s.engine.runId === run.runId && isRunActive(s.engine.runStatus));
  // Deleting loses trained steps for good, so it takes a second click.
  const [confirming, setConfirming] = useState(false);
  const created = new Date(run.createdAt).toLocaleString();
  return (
    <li className="saved-run" data-testid="saved-run" data-run-id={run.runId}>
      <span className="saved-run-what">
        <strong>{run.model}</strong> · {run.dataset.name} · {progressOf(run)}
        <span className="muted small"> · {created}</span>
      </span>
      <span className="tooltip-wrap" title={blocker ?? 'Resume from the newest checkpoint'}>
        <button
          type="button"
          className="btn btn-small"
          disabled={blocker !== null}
          onClick={() => engine.resumeSavedRun(run.runId)}
        >
          Resume
        </button>
      </span>
      <button
        type="button"
        className="btn btn-small btn-ghost"
        disabled={inUse}
        onClick={() => {
          if (!confirming) return setConfirming(true);
          setConfirming(false);
          engine.deleteRun(run.runId);
        }}
        onBlur={() => setConfirming(false)}
      >
        {confirming ? 'Delete for good?' : 'Delete'}
      </button>
    </li>
  );
}

export function SavedRuns() {
  const runs = useStudio((s) => s.engine.savedRuns);
  if (runs.length === 0) return null;
  return (
    <fieldset className="group saved-runs" data-testid="saved-runs">
      <legend>Saved runs</legend>
      <p className="muted small">
        Checkpoints kept in this browser. To resume one, load its model and dataset again.
      </p>
      <ul>
        {runs.map((r) => (
          <SavedRunRow key={r.runId} run={r} />
        ))}
      </ul>
    </fieldset>
  );
}
