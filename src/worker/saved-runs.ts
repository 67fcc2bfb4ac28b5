// Saved runs: the run.json manifest kept beside a run's checkpoints, so a reloaded page can list and resume them.
import { latestCheckpoint, STATE_FILE } from '../train/checkpoint';
import type { TrainerStateJson } from '../train/state';
import type { CheckpointStorage } from '../train/storage';
import { readJson, writeJson } from '../train/storage';
import type { RunId, SavedRun, TrainConfig } from './protocol';

/** Every run's folder lives under this one, named by its runId. */
export const RUNS_DIR = 'runs';
export const MANIFEST_FILE = 'run.json';
const MANIFEST_VERSION = 1;

/** What a resume needs beyond the checkpoints: the settings, and which model and dataset the run was trained on. */
export interface RunManifest {
  version: number;
  runId: RunId;
  createdAt: string;
  model: string;
  dataset: { name: string; size: number };
  config: TrainConfig;
}

export const runDir = (runId: RunId): string => `${RUNS_DIR}/${runId}`;

/** Run ids are made by the worker; anything else (a path, `..`) is refused before it reaches storage. */
export const isRunId = (s: string): boolean => /^[\w.-]+$/.test(s) && !/^\.+$/.test(s);

export function newManifest(
  runId: RunId,
  model: string,
  file: File,
  config: TrainConfig,
  now = new Date(),
): RunManifest {
  return {
    version: MANIFEST_VERSION,
    runId,
    createdAt: now.toISOString(),
    model,
    dataset: { name: file.name, size: file.size },
    config,
  };
}

export function writeManifest(run: CheckpointStorage, m: RunManifest): Promise<void> {
  return writeJson(run, MANIFEST_FILE, m);
}

/** The manifest in a run's folder, or null when there is none (a run from before manifests, or not a run). */
export async function readManifest(run: CheckpointStorage): Promise<RunManifest | null> {
  try {
    const m = await readJson<RunManifest>(run, MANIFEST_FILE);
    return m && m.version === MANIFEST_VERSION && typeof m.runId === 'string' ? m : null;
  } catch {
    // A torn or foreign run.json: the run cannot be resumed safely, so it is not offered.
    return null;
  }
}

/**
 * Why the loaded model and the given dataset file are not what the run was trained on, or null when they are.
 * Identity is the model's name and the dataset file's name and size (a File has no path and no content hash).
 */
export function identityMismatch(m: RunManifest, model: string, file: File | undefined): string | null {
  const wants = `run ${m.runId} was trained on ${m.model} with ${describeDataset(m.dataset)}`;
  if (model !== m.model) return `The loaded model is ${model}, but ${wants}.`;
  if (!file) return `No dataset is loaded, but ${wants}.`;
  if (file.name !== m.dataset.name || file.size !== m.dataset.size)
    return `The dataset is ${describeDataset(file)}, but ${wants}.`;
  return null;
}

export function whatToLoad(m: RunManifest): string {
  return `Load ${m.model} and the dataset ${describeDataset(m.dataset)}, then press Resume.`;
}

const describeDataset = (d: { name: string; size: number }) =>
  `${d.name} (${d.size.toLocaleString('en-US')} bytes)`;

/** The listing entry of one run: its manifest with the newest complete checkpoint's step and the run's plan. */
export async function savedRun(run: CheckpointStorage, m: RunManifest): Promise<SavedRun> {
  const latest = await latestCheckpoint(run);
  const state = latest ? await readJson<TrainerStateJson>(run, `${latest}/${STATE_FILE}`) : null;
  return {
    runId: m.runId,
    model: m.model,
    dataset: { ...m.dataset },
    step: state?.global_step ?? null,
    totalSteps: state?.max_steps ?? null,
    createdAt: m.createdAt,
  };
}

/** Every run under `runs/` that has a manifest, newest first. `open` roots a storage at a folder. */
export async function listSavedRuns(open: (dir: string) => Promise<CheckpointStorage>): Promise<SavedRun[]> {
  const root = await open(RUNS_DIR);
  const out: SavedRun[] = [];
  for (const name of await root.list('')) {
    if (!isRunId(name)) continue;
    const run = await open(runDir(name));
    const m = await readManifest(run);
    if (m && m.runId === name) out.push(await savedRun(run, m));
  }
  return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.runId.localeCompare(a.runId));
}
