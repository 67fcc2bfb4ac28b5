// PEFT's default target modules per architecture (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
import type { Arch } from '../model/spec';

export const DEFAULT_TARGETS: Record<Arch, string[]> = {
  llama: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  gpt2: ['c_attn'],
};

/** A --target value: `all-linear`, a comma-separated list of names, or (with regex characters) a regular expression. */
export function parseTargets(value: string | null, arch: Arch): string[] | string {
  if (value === null || value.trim() === '') return DEFAULT_TARGETS[arch];
  const v = value.trim();
  if (v === 'all-linear') return v;
  if (/[\\^$*+?()[\]{}|]/.test(v)) return v;
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
