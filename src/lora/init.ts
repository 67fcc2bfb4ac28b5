// A fresh adapter initialised as PEFT does: A kaiming-uniform (a = √5), B zero, from a seeded RNG.
import type { LinearModule } from '../model/spec';
import type { Adapter, LoraConfig, LoraTensors } from './config';
import { rankFor } from './config';
import { resolveAllLinear, targetModules } from './targets';
import { seededRandom } from '../util/random';

/** FNV-1a of a module name: each module gets its own stream, so adding a target leaves the others unchanged. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * kaiming_uniform_(A, a=√5) on A [r, in]: fan_in = in, gain = sqrt(2 / (1 + a²)) = sqrt(1/3),
 * bound = gain · sqrt(3 / fan_in) = 1 / sqrt(in). PEFT's reset_lora_parameters does exactly this.
 */
export function kaimingUniformA(r: number, inFeatures: number, rand: () => number): Float32Array {
  const gain = Math.sqrt(2 / (1 + 5));
  const bound = gain * Math.sqrt(3 / inFeatures);
  const A = new Float32Array(r * inFeatures);
  for (let i = 0; i < A.length; i++) A[i] = (rand() * 2 - 1) * bound;
  return A;
}

export function initLoraTensors(m: LinearModule, r: number, seed: number): LoraTensors {
  const rand = seededRandom((seed ^ hashName(m.name)) >>> 0);
  return {
    A: kaimingUniformA(r, m.inFeatures, rand),
    B: new Float32Array(m.outFeatures * r),
    r,
    in: m.inFeatures,
    out: m.outFeatures,
  };
}

/**
 * A new adapter on `modules` (the model's linear layers). `all-linear` is expanded in the stored config, as PEFT
 * saves it; fan_in_fan_out is set when the targets are GPT-2 Conv1D layers (PEFT corrects it the same way).
 */
export function initAdapter(config: LoraConfig, modules: readonly LinearModule[], seed: number): Adapter {
  if (config.initLoraWeights !== true)
    throw new Error(
      `init_lora_weights ${JSON.stringify(config.initLoraWeights)} is not supported (only true: PEFT's default)`,
    );
  const targets = targetModules(config, modules);
  const c = { ...resolveAllLinear(config, modules), fanInFanOut: targets.some((m) => m.fanInFanOut) };
  const tensors = new Map<string, LoraTensors>();
  for (const m of targets) tensors.set(m.name, initLoraTensors(m, rankFor(c, m.name), seed));
  return { config: c, tensors };
}
