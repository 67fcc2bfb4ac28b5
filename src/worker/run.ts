// The run commands: start, pause, resume (in this tab or a saved run after a reload), stop, listRuns, deleteRun.
import type { CommandOf } from './protocol';
import { prepare } from './load';
import {
  identityMismatch,
  isRunId,
  listSavedRuns,
  newManifest,
  readManifest,
  runDir,
  RUNS_DIR,
  whatToLoad,
  writeManifest,
} from './saved-runs';
import type { Run, WorkerSession } from './session';
import { argsFor, errorValue, StudioError } from './session';
import { datasetSummary, modelInfo, trainableLineFor } from './setup';
import { startTraining } from './training';

export async function start(s: WorkerSession, cmd: CommandOf<'start'>): Promise<void> {
  try {
    const loaded = s.loaded;
    if (!loaded) throw new StudioError('no-model', 'No model is loaded.', 'Load a model first.');
    if (s.busy) throw new StudioError('busy', `The engine is busy ${s.busy}.`, 'Wait for it to finish.');
    if (s.run?.status === 'running' || s.run?.status === 'paused')
      throw new StudioError('busy', 'A run is in progress.', 'Stop it before starting another.');
    const p = await prepare(s, loaded, cmd.dataset, cmd.config);
    s.emit({
      type: 'loaded',
      id: cmd.id,
      model: modelInfo(loaded.model),
      trainableLine: trainableLineFor(
        loaded.model,
        loaded.baseModel,
        argsFor(s, loaded, { runId: 'x', config: cmd.config }, false).args,
      ),
      dataset: datasetSummary(p.data, cmd.config.max_length),
    });
    const runId = `${new Date().toISOString().replace(/[:.]/g, '-')}-${++s.runCounter}`;
    const storage = await s.openStorage(runDir(runId));
    // Written before the first step, so a reload finds every run that may have a checkpoint.
    await writeManifest(storage, newManifest(runId, loaded.baseModel, cmd.dataset.files[0], cmd.config));
    const run: Run = {
      runId,
      config: cmd.config,
      dataKey: p.key,
      storage,
      status: 'running',
      abort: null,
      stopAs: null,
      session: null,
      lastStep: 0,
    };
    s.run = run;
    await startTraining(s, cmd.id, run, false);
  } catch (e) {
    s.fail(cmd.id, null, e);
  }
}

export const pause = (s: WorkerSession, cmd: CommandOf<'pause'>) =>
  s.withRun(cmd, ['running'], (r) => {
    r.stopAs = 'pause';
    r.abort?.abort();
  });

export const stop = (s: WorkerSession, cmd: CommandOf<'stop'>) =>
  s.withRun(cmd, ['running', 'paused'], (r) => {
    if (r.status === 'paused') {
      r.status = 'ended';
      s.emit({
        type: 'done',
        runId: r.runId,
        reason: 'stopped',
        steps: r.session?.result.step ?? 0,
        message: 'stopped while paused',
      });
      return;
    }
    r.stopAs = 'stop';
    r.abort?.abort();
  });

export async function resume(s: WorkerSession, cmd: CommandOf<'resume'>): Promise<void> {
  // A finished run of this tab is reopened from its checkpoints like a saved one (its adapter comes back).
  if (s.run?.runId === cmd.runId && s.run.status !== 'ended')
    return s.withRun(cmd, ['paused'], (r) => startTraining(s, cmd.id, r, true));
  let r: Run;
  try {
    r = await reopen(s, cmd);
  } catch (e) {
    s.fail(cmd.id, cmd.runId, e);
    return;
  }
  s.run = r;
  await startTraining(s, cmd.id, r, true);
}

/**
 * A saved run of an earlier page (a reload), made current again: only when the loaded model and the given dataset
 * are the ones it was trained on, since its checkpoints fit nothing else.
 */
async function reopen(s: WorkerSession, cmd: CommandOf<'resume'>): Promise<Run> {
  const missing = new StudioError(
    'no-run',
    `There is no run ${cmd.runId} in this browser.`,
    'Start a new run.',
  );
  if (!isRunId(cmd.runId)) throw missing;
  const manifest = await readManifest(await s.openStorage(runDir(cmd.runId)));
  if (!manifest) throw missing;
  const loaded = s.loaded;
  if (!loaded)
    throw new StudioError(
      'no-model',
      `No model is loaded; run ${cmd.runId} needs its own.`,
      whatToLoad(manifest),
    );
  if (s.busy) throw new StudioError('busy', `The engine is busy ${s.busy}.`, 'Wait for it to finish.');
  if (s.run?.status === 'running' || s.run?.status === 'paused')
    throw new StudioError('busy', 'A run is in progress.', 'Stop it before resuming another.');
  const dataset = cmd.dataset;
  const mismatch = identityMismatch(manifest, loaded.baseModel, dataset?.files[0]);
  if (mismatch !== null || !dataset)
    throw new StudioError('bad-request', mismatch ?? 'No dataset was given.', whatToLoad(manifest));
  const p = await prepare(s, loaded, dataset, manifest.config);
  return {
    runId: manifest.runId,
    config: manifest.config,
    dataKey: p.key,
    storage: await s.openStorage(runDir(manifest.runId)),
    status: 'paused',
    abort: null,
    stopAs: null,
    session: null,
    lastStep: 0,
  };
}

export async function listRuns(s: WorkerSession, cmd: CommandOf<'listRuns'>): Promise<void> {
  try {
    s.emit({ type: 'runs', id: cmd.id, result: { ok: true, value: await listSavedRuns(s.openStorage) } });
  } catch (e) {
    s.emit({ type: 'runs', id: cmd.id, result: { ok: false, error: errorValue(e) } });
  }
}

export async function deleteRun(s: WorkerSession, cmd: CommandOf<'deleteRun'>): Promise<void> {
  try {
    if (!isRunId(cmd.runId)) throw new StudioError('bad-request', `"${cmd.runId}" is not a run id.`);
    if (s.run?.runId === cmd.runId && s.run.status === 'running')
      throw new StudioError('busy', 'This run is training.', 'Stop it before deleting it.');
    await (await s.openStorage(RUNS_DIR)).remove(cmd.runId);
    if (s.run?.runId === cmd.runId) s.run = null;
    s.emit({ type: 'runs', id: cmd.id, result: { ok: true, value: await listSavedRuns(s.openStorage) } });
  } catch (e) {
    s.fail(cmd.id, cmd.runId, e);
  }
}
