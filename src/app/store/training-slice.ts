// Training slice: the form (hyperparameters persisted per field) and the files the user dropped (never persisted).
import type { SliceCreator } from './types';
import type { TrainingSettings } from './settings';
import { DEFAULT_SETTINGS, clampSetting, isNumericKey } from './settings';

export interface TrainingSlice {
  settings: TrainingSettings;
  /** A dropped model folder (config.json, tokenizer, safetensors); in memory only. */
  modelFiles: File[];
  datasetFiles: File[];
  settingChanged<K extends keyof TrainingSettings>(key: K, value: TrainingSettings[K]): void;
  targetModuleToggled(name: string, on: boolean): void;
  modelFilesDropped(files: File[]): void;
  datasetFilesDropped(files: File[]): void;
  settingsReset(): void;
}

export const createTrainingSlice: SliceCreator<TrainingSlice> = (set) => ({
  settings: DEFAULT_SETTINGS,
  modelFiles: [],
  datasetFiles: [],
  settingChanged: (key, value) =>
    set((s) => {
      // Numbers are clamped to their bounds here, so every writer gets the same rule.
      const v = isNumericKey(key) && typeof value === 'number' ? clampSetting(key, value) : value;
      return { settings: { ...s.settings, [key]: v } };
    }),
  targetModuleToggled: (name, on) =>
    set((s) => {
      const rest = s.settings.target_modules.filter((m) => m !== name);
      return { settings: { ...s.settings, target_modules: on ? [...rest, name] : rest } };
    }),
  modelFilesDropped: (files) => set({ modelFiles: files }),
  datasetFilesDropped: (files) => set({ datasetFiles: files }),
  settingsReset: () =>
    set((s) => ({
      settings: {
        ...DEFAULT_SETTINGS,
        target_modules: [...DEFAULT_SETTINGS.target_modules],
        modelRepo: s.settings.modelRepo,
      },
    })),
});
