// Training settings: defaults, bounds, and how each field persists (a field without a rule fails tsc).
import type { SchedulerName, TrainConfig } from '../../worker/protocol';

export type TrainingSettings = TrainConfig & {
  /** Hugging Face Hub repository id of the base model, e.g. `HuggingFaceTB/SmolLM2-135M-Instruct`. */
  modelRepo: string;
};

export const DEFAULT_SETTINGS: TrainingSettings = {
  modelRepo: '',
  r: 8,
  lora_alpha: 16,
  lora_dropout: 0.05,
  target_modules: ['q_proj', 'v_proj'],
  learning_rate: 2e-4,
  num_train_epochs: 3,
  per_device_train_batch_size: 4,
  gradient_accumulation_steps: 4,
  lr_scheduler_type: 'cosine',
  warmup_steps: 10,
  max_length: 512,
  max_steps: 0,
  eval_split: 0.1,
};

/** `local`: kept in localStorage across visits; `none`: starts from the default on every visit. */
export type Persistence = 'local' | 'none';

export const SETTINGS_PERSISTENCE: { [K in keyof TrainingSettings]: Persistence } = {
  modelRepo: 'local',
  r: 'local',
  lora_alpha: 'local',
  lora_dropout: 'local',
  target_modules: 'local',
  learning_rate: 'local',
  num_train_epochs: 'local',
  per_device_train_batch_size: 'local',
  gradient_accumulation_steps: 'local',
  lr_scheduler_type: 'local',
  warmup_steps: 'local',
  max_length: 'local',
  max_steps: 'local',
  eval_split: 'local',
};

export interface NumberBounds {
  min: number;
  max: number;
  step: number;
}

type NumericKey = {
  [K in keyof TrainingSettings]: TrainingSettings[K] extends number ? K : never;
}[keyof TrainingSettings];

/** Bounds of every numeric field, shared by the controls and by validation of persisted values. */
export const BOUNDS: { [K in NumericKey]: NumberBounds } = {
  r: { min: 1, max: 256, step: 1 },
  lora_alpha: { min: 1, max: 512, step: 1 },
  lora_dropout: { min: 0, max: 0.5, step: 0.01 },
  learning_rate: { min: 1e-7, max: 1e-1, step: 1e-6 },
  num_train_epochs: { min: 1, max: 100, step: 1 },
  per_device_train_batch_size: { min: 1, max: 256, step: 1 },
  gradient_accumulation_steps: { min: 1, max: 1024, step: 1 },
  warmup_steps: { min: 0, max: 100_000, step: 1 },
  max_length: { min: 16, max: 32_768, step: 16 },
  max_steps: { min: 0, max: 1_000_000, step: 1 },
  eval_split: { min: 0, max: 0.5, step: 0.01 },
};

export const SCHEDULERS: readonly { value: SchedulerName; label: string }[] = [
  { value: 'linear', label: 'Linear decay' },
  { value: 'cosine', label: 'Cosine' },
  { value: 'constant', label: 'Constant' },
  { value: 'constant_with_warmup', label: 'Constant with warmup' },
];

/** Module names as in Llama / Qwen2 (PEFT `target_modules`). */
export const TARGET_MODULES = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;

export function isNumericKey(k: keyof TrainingSettings): k is NumericKey {
  return Object.hasOwn(BOUNDS, k);
}

export function clampSetting(k: NumericKey, v: number): number {
  const b = BOUNDS[k];
  if (!Number.isFinite(v)) return DEFAULT_SETTINGS[k];
  const clamped = Math.min(b.max, Math.max(b.min, v));
  return b.step >= 1 ? Math.round(clamped) : clamped;
}

/** The persisted part of the settings. */
export function persistedSettings(s: TrainingSettings): Partial<TrainingSettings> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(SETTINGS_PERSISTENCE) as (keyof TrainingSettings)[]) {
    if (SETTINGS_PERSISTENCE[k] === 'local') out[k] = s[k];
  }
  return out as Partial<TrainingSettings>;
}

/** Defaults overlaid with whatever stored values are still valid (a stale or edited store cannot break the form). */
export function restoreSettings(stored: unknown): TrainingSettings {
  const out: TrainingSettings = { ...DEFAULT_SETTINGS, target_modules: [...DEFAULT_SETTINGS.target_modules] };
  if (typeof stored !== 'object' || stored === null) return out;
  const rec = stored as Record<string, unknown>;
  for (const k of Object.keys(SETTINGS_PERSISTENCE) as (keyof TrainingSettings)[]) {
    if (SETTINGS_PERSISTENCE[k] !== 'local' || !Object.hasOwn(rec, k)) continue;
    const v = rec[k];
    if (isNumericKey(k)) {
      if (typeof v === 'number') out[k] = clampSetting(k, v);
    } else if (k === 'target_modules') {
      if (Array.isArray(v)) {
        out.target_modules = v.filter((m): m is string => typeof m === 'string');
      }
    } else if (k === 'lr_scheduler_type') {
      if (SCHEDULERS.some((s) => s.value === v)) out.lr_scheduler_type = v as SchedulerName;
    } else if (k === 'modelRepo') {
      if (typeof v === 'string') out.modelRepo = v;
    }
  }
  return out;
}
