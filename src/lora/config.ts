// LoraConfig (PEFT's LoraConfig in our names), the CPU-side Adapter, per-module rank/alpha/scaling, and the
// adapter_config.json contract in both directions.
import { pyJson, pyFloat } from './pyjson';
import { patternKey } from './targets';

/** The fields of PEFT's LoraConfig that LoRA Studio understands. Names follow PEFT (camelCased). */
export interface LoraConfig {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  /** A list (exact name or `.`-suffix match), a regular expression (full match), or `all-linear`. */
  targetModules: string[] | string;
  /** PEFT ≥ 0.14: modules never targeted (same matching rules as targetModules). */
  excludeModules: string[] | string | null;
  layersToTransform: number[] | number | null;
  layersPattern: string[] | string | null;
  /** Regex key → rank / alpha, matched as PEFT's get_pattern_key (see targets.ts). Insertion order matters. */
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  useRslora: boolean;
  /** As written by the adapter; merging always follows the module's own layout (PEFT corrects this flag too). */
  fanInFanOut: boolean;
  initLoraWeights: boolean | string;
  baseModelNameOrPath: string | null;
  revision: string | null;
}

/** One module's LoRA pair on the CPU: A [r, in], B [out, r], row-major f32. */
export interface LoraTensors {
  A: Float32Array;
  B: Float32Array;
  r: number;
  in: number;
  out: number;
}

/** A LoRA adapter, runtime-neutral: its config and its tensors keyed by PEFT module path. */
export interface Adapter {
  config: LoraConfig;
  tensors: Map<string, LoraTensors>;
}

export class AdapterConfigError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'AdapterConfigError';
  }
}

/** PEFT's defaults (LoraConfig()), except the targets, which the caller must choose. */
export function loraConfig(partial: Partial<LoraConfig> & Pick<LoraConfig, 'targetModules'>): LoraConfig {
  const c: LoraConfig = {
    r: 8,
    loraAlpha: 8,
    loraDropout: 0,
    excludeModules: null,
    layersToTransform: null,
    layersPattern: null,
    rankPattern: {},
    alphaPattern: {},
    useRslora: false,
    fanInFanOut: false,
    initLoraWeights: true,
    baseModelNameOrPath: null,
    revision: null,
    ...partial,
  };
  validate(c, 'LoraConfig');
  return c;
}

function validate(c: LoraConfig, file: string): void {
  const posInt = (v: unknown, what: string) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      throw new AdapterConfigError(file, `${what} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  posInt(c.r, 'r');
  for (const [k, v] of Object.entries(c.rankPattern)) posInt(v, `rank_pattern["${k}"]`);
  const finite = (v: unknown, what: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new AdapterConfigError(file, `${what} must be a number, got ${JSON.stringify(v)}`);
  };
  finite(c.loraAlpha, 'lora_alpha');
  for (const [k, v] of Object.entries(c.alphaPattern)) finite(v, `alpha_pattern["${k}"]`);
  finite(c.loraDropout, 'lora_dropout');
  if (c.loraDropout < 0 || c.loraDropout >= 1)
    throw new AdapterConfigError(file, `lora_dropout must be in [0, 1), got ${c.loraDropout}`);
  if (Array.isArray(c.targetModules) ? c.targetModules.length === 0 : c.targetModules === '')
    throw new AdapterConfigError(file, 'target_modules is empty');
}

/** The rank PEFT gives `module`: rank_pattern's first matching key, else r. */
export function rankFor(c: LoraConfig, module: string): number {
  const key = patternKey(Object.keys(c.rankPattern), module);
  return key === null ? c.r : c.rankPattern[key];
}

export function alphaFor(c: LoraConfig, module: string): number {
  const key = patternKey(Object.keys(c.alphaPattern), module);
  return key === null ? c.loraAlpha : c.alphaPattern[key];
}

/** scaling = alpha / r, or alpha / sqrt(r) with rsLoRA (Kalajdzievski 2023), per module as PEFT's LoraLayer. */
export function scalingFor(c: LoraConfig, module: string): number {
  const r = rankFor(c, module);
  const alpha = alphaFor(c, module);
  return c.useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

// ---- adapter_config.json -----------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * Fields refused with the feature's name: they change the math or the saved tensors in ways we do not implement.
 * Each predicate says when the field is "in use" (PEFT writes neutral defaults for all of them).
 */
const UNSUPPORTED: [field: string, feature: string, inUse: (v: Json) => boolean][] = [
  ['use_dora', 'DoRA (use_dora)', (v) => v === true],
  ['modules_to_save', 'modules_to_save (fully trained extra modules)', (v) => nonEmpty(v)],
  ['layer_replication', 'layer_replication', (v) => nonEmpty(v)],
  ['lora_bias', 'lora_bias (a bias on lora_B)', (v) => v === true],
  ['trainable_token_indices', 'trainable_token_indices (trainable tokens)', (v) => nonEmpty(v)],
  ['target_parameters', 'target_parameters (LoRA on nn.Parameter)', (v) => nonEmpty(v)],
  ['use_qalora', 'QA-LoRA (use_qalora)', (v) => v === true],
  ['alora_invocation_tokens', 'activated LoRA (alora_invocation_tokens)', (v) => nonEmpty(v)],
  ['arrow_config', 'Arrow routing (arrow_config)', (v) => nonEmpty(v)],
  ['megatron_config', 'Megatron parallel layers (megatron_config)', (v) => nonEmpty(v)],
];

function nonEmpty(v: Json): boolean {
  if (v === null || v === false) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Reads an adapter_config.json as PEFT (any version ≥ 0.9, and newer ones' extra fields) writes it. */
export function parsePeftConfig(text: string, file = 'adapter_config.json'): LoraConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new AdapterConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new AdapterConfigError(file, 'expected a JSON object');
  const j = raw as Record<string, Json>;
  const peftType = j.peft_type ?? 'LORA';
  if (peftType !== 'LORA')
    throw new AdapterConfigError(file, `peft_type "${String(peftType)}" is not supported (only LORA)`);
  const task = j.task_type ?? null;
  if (task !== null && task !== 'CAUSAL_LM')
    throw new AdapterConfigError(file, `task_type "${String(task)}" is not supported (only CAUSAL_LM)`);
  const refused = UNSUPPORTED.filter(([f, , inUse]) => f in j && inUse(j[f])).map(([, feature]) => feature);
  const bias = j.bias ?? 'none';
  if (bias !== 'none') refused.push(`bias "${String(bias)}" (trained biases)`);
  if (refused.length > 0)
    throw new AdapterConfigError(file, `unsupported PEFT feature(s): ${refused.join(', ')}`);

  const strOrList = (v: Json | undefined, what: string): string[] | string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    throw new AdapterConfigError(
      file,
      `${what} must be a string or a list of strings, got ${JSON.stringify(v)}`,
    );
  };
  const numMap = (v: Json | undefined, what: string): Record<string, number> => {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v))
      throw new AdapterConfigError(file, `${what} must be an object`);
    for (const [k, x] of Object.entries(v))
      if (typeof x !== 'number') throw new AdapterConfigError(file, `${what}["${k}"] must be a number`);
    return v as Record<string, number>;
  };
  let layers: number[] | number | null = null;
  const lt = j.layers_to_transform;
  if (typeof lt === 'number') layers = lt;
  else if (Array.isArray(lt) && lt.every((x) => typeof x === 'number')) layers = lt as number[];
  else if (lt !== undefined && lt !== null)
    throw new AdapterConfigError(file, `layers_to_transform must be an int or a list of ints`);
  const str = (v: Json | undefined, what: string): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw new AdapterConfigError(file, `${what} must be a string`);
    return v;
  };
  const targets = strOrList(j.target_modules, 'target_modules');
  const c: LoraConfig = {
    r: (j.r ?? 8) as number,
    loraAlpha: (j.lora_alpha ?? 8) as number,
    loraDropout: (j.lora_dropout ?? 0) as number,
    // null (never written by save_pretrained, which fills in the defaults) means "the modules in the file".
    targetModules: targets ?? [],
    excludeModules: strOrList(j.exclude_modules, 'exclude_modules'),
    layersToTransform: layers,
    layersPattern: strOrList(j.layers_pattern, 'layers_pattern'),
    rankPattern: numMap(j.rank_pattern, 'rank_pattern'),
    alphaPattern: numMap(j.alpha_pattern, 'alpha_pattern'),
    useRslora: j.use_rslora === true,
    fanInFanOut: j.fan_in_fan_out === true,
    initLoraWeights:
      typeof j.init_lora_weights === 'string' ? j.init_lora_weights : j.init_lora_weights !== false,
    baseModelNameOrPath: str(j.base_model_name_or_path, 'base_model_name_or_path'),
    revision: str(j.revision, 'revision'),
  };
  if (targets !== null) validate(c, file);
  else validate({ ...c, targetModules: ['(from the tensors)'] }, file);
  return c;
}

/**
 * adapter_config.json as PEFT's save_pretrained writes it: `json.dumps(d, indent=2, sort_keys=True)`, no newline at
 * the end, and only fields that PEFT 0.9 already knew (older LoraConfig(**kwargs) rejects unknown ones).
 * `targets` overrides target_modules (e.g. the explicit module list when exclude_modules was used).
 */
export function peftConfigJson(c: LoraConfig, targets: string[] | string = c.targetModules): string {
  const t = typeof targets === 'string' ? targets : [...new Set(targets)].sort();
  const numberish = (v: number) => (Number.isInteger(v) ? v : pyFloat(v));
  const d: Record<string, unknown> = {
    alpha_pattern: Object.fromEntries(Object.entries(c.alphaPattern).map(([k, v]) => [k, numberish(v)])),
    base_model_name_or_path: c.baseModelNameOrPath,
    bias: 'none',
    fan_in_fan_out: c.fanInFanOut,
    inference_mode: true,
    init_lora_weights: c.initLoraWeights,
    layers_pattern: c.layersPattern,
    layers_to_transform: c.layersToTransform,
    lora_alpha: numberish(c.loraAlpha),
    // PEFT types lora_dropout as float: Python writes 0.0, not 0.
    lora_dropout: pyFloat(c.loraDropout),
    modules_to_save: null,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: { ...c.rankPattern },
    revision: c.revision,
    target_modules: t,
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: c.useRslora,
  };
  return pyJson(d);
}
