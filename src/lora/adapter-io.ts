// Adapters in PEFT's layout, both ways: adapter_model.safetensors + adapter_config.json (+ README.md).
import type { LinearModule } from '../model/spec';
import type { SafetensorsDtype, TensorToWrite } from '../model/safetensors';
import {
  f32ToBf16,
  f32ToF16,
  isFloatDtype,
  memoryReader,
  SafetensorsFile,
  toF32,
  writeSafetensors,
} from '../model/safetensors';
import type { Adapter, LoraConfig, LoraTensors } from './config';
import { AdapterConfigError, parsePeftConfig, peftConfigJson, rankFor } from './config';
import { isTargeted, targetModules } from './targets';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

export type FloatDtype = 'f32' | 'f16' | 'bf16';

/** A file to write or download: a name relative to the folder, and its bytes. */
export interface OutFile {
  name: string;
  data: Uint8Array;
}

/** The key PEFT's save_pretrained writes (it strips the adapter name, `.default`). */
export function peftKey(module: string, which: 'A' | 'B'): string {
  return `base_model.model.${module}.lora_${which}.weight`;
}

export const ST_DTYPE: Record<FloatDtype, SafetensorsDtype> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** Little-endian bytes of f32 values in `dtype` (f16/bf16 rounded to nearest even, as torch's .to()). */
export function encodeFloats(x: Float32Array, dtype: FloatDtype): Uint8Array {
  const words = dtype === 'f32' ? x : dtype === 'f16' ? f32ToF16(x) : f32ToBf16(x);
  return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
}

/** adapter_model.safetensors: metadata {"format": "pt"}, lora_A [r, in] and lora_B [out, r] per module. */
export function adapterSafetensors(adapter: Adapter, dtype: FloatDtype = 'f32'): Uint8Array {
  const tensors: TensorToWrite[] = [];
  for (const [module, t] of adapter.tensors) {
    tensors.push({
      name: peftKey(module, 'A'),
      dtype: ST_DTYPE[dtype],
      shape: [t.r, t.in],
      data: encodeFloats(t.A, dtype),
    });
    tensors.push({
      name: peftKey(module, 'B'),
      dtype: ST_DTYPE[dtype],
      shape: [t.out, t.r],
      data: encodeFloats(t.B, dtype),
    });
  }
  return writeSafetensors(tensors, { format: 'pt' });
}

/**
 * adapter_config.json for this adapter. exclude_modules is a PEFT ≥ 0.14 field that older versions reject, so an
 * adapter that uses it is written with target_modules = its explicit module list (exact names match outright).
 */
export function adapterConfigText(adapter: Adapter): string {
  const c = adapter.config;
  const explicit = (c.excludeModules !== null && c.excludeModules.length > 0) || isEmptyList(c.targetModules);
  if (!explicit) return peftConfigJson(c);
  return peftConfigJson({ ...c, layersToTransform: null, layersPattern: null }, [...adapter.tensors.keys()]);
}

function isEmptyList(t: string[] | string): boolean {
  return Array.isArray(t) && t.length === 0;
}

/** The adapter folder's files, in the order a user would want to download them one by one. */
export function adapterFiles(
  adapter: Adapter,
  opts: { dtype?: FloatDtype; readme?: string } = {},
): OutFile[] {
  const enc = new TextEncoder();
  const files: OutFile[] = [
    { name: ADAPTER_CONFIG, data: enc.encode(adapterConfigText(adapter)) },
    { name: ADAPTER_WEIGHTS, data: adapterSafetensors(adapter, opts.dtype ?? 'f32') },
  ];
  if (opts.readme !== undefined) files.push({ name: 'README.md', data: enc.encode(opts.readme) });
  return files;
}

// ---- import ---------------------------------------------------------------------------------------------------

// base_model.model.<module>.lora_A[.<adapter name>].weight; the prefix is optional (some tools drop it).
const KEY = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.([^.]+))?\.weight$/;

/** Keys of PEFT features we refuse, with the feature's name for the message. */
const REFUSED_KEYS: [RegExp, string][] = [
  [/\.lora_embedding_[AB]\b/, 'embedding LoRA (lora_embedding_A/B)'],
  [/\.lora_magnitude_vector\b/, 'DoRA (lora_magnitude_vector)'],
  [/\.modules_to_save\.|\.original_module\./, 'modules_to_save'],
  [/\.lora_B(?:\.[^.]+)?\.bias$/, 'lora_bias (a bias on lora_B)'],
  [/\.trainable_tokens_/, 'trainable tokens'],
];

/**
 * Reads adapter_model.safetensors into per-module f32 tensors. Accepts F32/F16/BF16 and keys with or without the
 * adapter name (`lora_A.default.weight`). Throws naming the key on anything else.
 */
export async function parseAdapterWeights(
  bytes: Uint8Array,
  file = ADAPTER_WEIGHTS,
): Promise<Map<string, LoraTensors>> {
  const st = await SafetensorsFile.open(memoryReader(file, bytes));
  const pairs = new Map<string, { A?: string; B?: string }>();
  const adapterNames = new Set<string>();
  for (const key of st.names) {
    const refused = REFUSED_KEYS.find(([re]) => re.test(key));
    if (refused) throw new AdapterConfigError(file, `tensor "${key}": ${refused[1]} is not supported`);
    const m = KEY.exec(key);
    if (!m)
      throw new AdapterConfigError(
        file,
        `tensor "${key}" is not a LoRA weight (…lora_A.weight / …lora_B.weight)`,
      );
    const [, module, which, name] = m;
    adapterNames.add(name ?? '');
    const p = pairs.get(module) ?? {};
    if (p[which as 'A' | 'B'] !== undefined)
      throw new AdapterConfigError(file, `tensor "${key}": two lora_${which} for ${module}`);
    p[which as 'A' | 'B'] = key;
    pairs.set(module, p);
  }
  if (adapterNames.size > 1)
    throw new AdapterConfigError(
      file,
      `holds several adapters (${[...adapterNames].map((n) => n || '(unnamed)').join(', ')}); save them separately`,
    );
  const out = new Map<string, LoraTensors>();
  for (const [module, p] of pairs) {
    if (!p.A || !p.B)
      throw new AdapterConfigError(
        file,
        `module ${module} has lora_${p.A ? 'A' : 'B'} but no lora_${p.A ? 'B' : 'A'}`,
      );
    const a = st.info(p.A);
    const b = st.info(p.B);
    for (const t of [a, b]) {
      if (!isFloatDtype(t.dtype))
        throw new AdapterConfigError(file, `tensor "${t.name}" is ${t.dtype}; expected F32, F16 or BF16`);
      if (t.shape.length !== 2)
        throw new AdapterConfigError(
          file,
          `tensor "${t.name}" has shape [${t.shape.join(',')}]; expected 2 dimensions`,
        );
    }
    const [r, inF] = a.shape;
    const [outF, rB] = b.shape;
    if (r !== rB)
      throw new AdapterConfigError(
        file,
        `module ${module}: lora_A is [${a.shape.join(',')}] but lora_B is [${b.shape.join(',')}] (ranks differ)`,
      );
    const A = toF32(a.dtype as 'F32' | 'F16' | 'BF16', await st.bytes(p.A));
    const B = toF32(b.dtype as 'F32' | 'F16' | 'BF16', await st.bytes(p.B));
    out.set(module, { A, B, r, in: inF, out: outF });
  }
  if (out.size === 0) throw new AdapterConfigError(file, 'holds no LoRA tensors');
  return out;
}

/**
 * An adapter from PEFT's two files. Checks that every module in the weights is one the config targets and has
 * the rank the config (r, rank_pattern) gives it. A config without target_modules takes the modules in the file.
 */
export async function importAdapter(src: {
  config: string;
  weights: Uint8Array;
  configFile?: string;
  weightsFile?: string;
}): Promise<Adapter> {
  const cfgFile = src.configFile ?? ADAPTER_CONFIG;
  const wFile = src.weightsFile ?? ADAPTER_WEIGHTS;
  const parsed = parsePeftConfig(src.config, cfgFile);
  const tensors = await parseAdapterWeights(src.weights, wFile);
  const config: LoraConfig = isEmptyList(parsed.targetModules)
    ? { ...parsed, targetModules: [...tensors.keys()] }
    : parsed;
  const allLinear =
    typeof config.targetModules === 'string' && config.targetModules.toLowerCase() === 'all-linear';
  for (const [module, t] of tensors) {
    if (!allLinear && !isTargeted(config, module))
      throw new AdapterConfigError(
        wFile,
        `module ${module} (${peftKey(module, 'A')}) is not targeted by ${cfgFile}'s target_modules`,
      );
    const want = rankFor(config, module);
    if (t.r !== want)
      throw new AdapterConfigError(
        wFile,
        `${peftKey(module, 'A')} has rank ${t.r} but ${cfgFile} gives ${module} rank ${want}`,
      );
  }
  return { config, tensors };
}

/**
 * Checks an adapter against a model's linear layers: every module must exist and fit (lora_A [r, in],
 * lora_B [out, r]). Returns the modules the config targets that the adapter has no tensors for (PEFT loads those
 * freshly initialised, i.e. with no effect, and warns).
 */
export function checkAdapter(adapter: Adapter, modules: readonly LinearModule[]): { missing: string[] } {
  const byName = new Map(modules.map((m) => [m.name, m]));
  for (const [name, t] of adapter.tensors) {
    const m = byName.get(name);
    if (!m) {
      const near = modules.find((x) => x.name.endsWith(name.split('.').slice(-2).join('.')))?.name;
      throw new Error(
        `adapter key ${peftKey(name, 'A')}: the model has no linear module "${name}"${near ? ` (e.g. ${near})` : ''}`,
      );
    }
    if (t.in !== m.inFeatures || t.out !== m.outFeatures)
      throw new Error(
        `adapter module ${name}: lora_A [${t.r},${t.in}] / lora_B [${t.out},${t.r}] do not fit the layer (in ${m.inFeatures}, out ${m.outFeatures})`,
      );
  }
  const missing = targetModules(adapter.config, modules)
    .map((m) => m.name)
    .filter((n) => !adapter.tensors.has(n));
  return { missing };
}
