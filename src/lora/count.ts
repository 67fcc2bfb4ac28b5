// Parameter counts and PEFT's print_trainable_parameters line, for any model spec and LoRA config.
import type { LinearModule, ModelSpec } from '../model/spec';
import type { Adapter, LoraConfig } from './config';
import { rankFor } from './config';
import { targetModules } from './targets';
import { countParams } from '../model/architectures/index';

/** Parameters of the base model as torch counts them (tied embeddings once): the architecture's own count. */
export function baseParamCount(spec: ModelSpec): number {
  return countParams(spec);
}

/** LoRA parameters a config adds: r·(in + out) per targeted module, with rank_pattern applied. */
export function loraParamCount(config: LoraConfig, modules: readonly LinearModule[]): number {
  let n = 0;
  for (const m of targetModules(config, modules))
    n += rankFor(config, m.name) * (m.inFeatures + m.outFeatures);
  return n;
}

export function adapterParamCount(adapter: Adapter): number {
  let n = 0;
  for (const t of adapter.tensors.values()) n += t.r * (t.in + t.out);
  return n;
}

/** Python's f"{n:,d}". */
function commas(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** PEFT's line: `trainable params: 1,234 || all params: 5,678 || trainable%: 21.7322` (all = base + LoRA). */
export function formatTrainableLine(trainable: number, all: number): string {
  const pct = all === 0 ? 0 : (100 * trainable) / all;
  return `trainable params: ${commas(trainable)} || all params: ${commas(all)} || trainable%: ${pct.toFixed(4)}`;
}

/** The line for `info --target --r` and the studio: the config applied to this model. */
export function trainableParamsLine(
  spec: ModelSpec,
  modules: readonly LinearModule[],
  config: LoraConfig,
): string {
  const lora = loraParamCount(config, modules);
  return formatTrainableLine(lora, baseParamCount(spec) + lora);
}
