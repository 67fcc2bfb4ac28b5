// The studio store: slices with named actions, the training settings persisted per field.
import { useStore } from 'zustand';
import { createJSONStorage, persist } from 'zustand/middleware';
import type { StateStorage } from 'zustand/middleware';
import { createStore } from 'zustand/vanilla';
import { createEngineSlice, isRunActive } from './engine-slice';
import { createGpuSlice } from './gpu-slice';
import { createMetricsSlice } from './metrics-slice';
import { persistedSettings, restoreSettings } from './settings';
import { createTrainingSlice } from './training-slice';
import type { SavedRun } from '../../worker/protocol';
import type { StudioState } from './types';

export type { StudioState } from './types';

export const STORAGE_KEY = 'lora-studio:settings';
const STORAGE_VERSION = 1;

/** localStorage when there is one (and it works: private modes may throw), else nothing is kept. */
function defaultStorage(): StateStorage {
  try {
    const ls = globalThis.localStorage;
    ls.getItem(STORAGE_KEY);
    return ls;
  } catch {
    return { getItem: () => null, setItem: () => {}, removeItem: () => {} };
  }
}

export function createStudioStore(storage: StateStorage = defaultStorage()) {
  return createStore<StudioState>()(
    persist(
      (...a) => ({
        ...createGpuSlice(...a),
        ...createEngineSlice(...a),
        ...createTrainingSlice(...a),
        ...createMetricsSlice(...a),
      }),
      {
        name: STORAGE_KEY,
        version: STORAGE_VERSION,
        storage: createJSONStorage(() => storage),
        partialize: (s) => ({ settings: persistedSettings(s.settings) }),
        merge: (persisted, current) => ({
          ...current,
          settings: restoreSettings((persisted as { settings?: unknown } | undefined)?.settings),
        }),
      },
    ),
  );
}

export type StudioStore = ReturnType<typeof createStudioStore>;

export const studioStore = createStudioStore();

export function useStudio<T>(selector: (s: StudioState) => T): T {
  return useStore(studioStore, selector);
}

/** Why Start cannot run now, or null when it can. */
export function startBlocker(s: StudioState): string | null {
  if (s.gpu.status !== 'ready') return 'WebGPU is not ready on this device.';
  if (s.engine.loading) return 'The model is loading.';
  if (!s.engine.model) return 'The training engine is not loaded yet: load a model first.';
  if (s.datasetFiles.length === 0) return 'Add a dataset first.';
  if (s.settings.target_modules.length === 0) return 'Pick at least one target module.';
  if (isRunActive(s.engine.runStatus)) return 'A run is already in progress.';
  return null;
}

/** Why a saved run cannot be resumed now (what to load first), or null when it can. */
export function resumeBlocker(s: StudioState, run: SavedRun): string | null {
  if (s.gpu.status !== 'ready') return 'WebGPU is not ready on this device.';
  if (s.engine.loading) return 'The model is loading.';
  if (isRunActive(s.engine.runStatus)) return 'A run is already in progress.';
  const file = s.datasetFiles[0];
  const sameData = file?.name === run.dataset.name && file.size === run.dataset.size;
  if (!s.engine.model || !sameData) return `Load ${run.model} with the dataset ${run.dataset.name} first.`;
  return null;
}
