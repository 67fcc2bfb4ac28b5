// Merging: W' = W + scaling · B·A (transposed for GPT-2 Conv1D), and the merged model as a Hugging Face folder.
import type { LinearModule } from '../model/spec';
import type { SafetensorsDtype, TensorToWrite } from '../model/safetensors';
import { isFloatDtype, toF32, writeSafetensors } from '../model/safetensors';
import type { FloatDtype, OutFile } from './adapter-io';
import { encodeFloats, ST_DTYPE } from './adapter-io';
import type { Adapter, LoraTensors } from './config';
import { scalingFor } from './config';
import { pyJson } from './pyjson';

/**
 * W + scaling · B·A for one layer, a new array. W is [out, in] (nn.Linear) or [in, out] when `fanInFanOut`
 * (Conv1D, where PEFT adds (B·A)ᵀ). Each delta element is summed over r in float64, then added once.
 */
export function mergeWeight(
  W: Float32Array,
  m: Pick<LinearModule, 'inFeatures' | 'outFeatures' | 'fanInFanOut'>,
  t: LoraTensors,
  scaling: number,
): Float32Array {
  const { r } = t;
  const I = m.inFeatures;
  const O = m.outFeatures;
  if (W.length !== I * O) throw new Error(`mergeWeight: weight has ${W.length} values, layer is ${O}x${I}`);
  if (t.in !== I || t.out !== O)
    throw new Error(`mergeWeight: LoRA [${t.out}x${t.r}]·[${t.r}x${t.in}] does not fit ${O}x${I}`);
  const out = new Float32Array(W.length);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += t.B[o * r + k] * t.A[k * I + i];
      const at = m.fanInFanOut ? i * O + o : o * I + i;
      out[at] = W[at] + scaling * d;
    }
  }
  return out;
}

/** One tensor of a checkpoint, raw. */
export interface CheckpointTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

/** Browsers cannot hold one ArrayBuffer over 2³¹ − 1 bytes; shards of at most 2 GB (10⁹·2) stay under it. */
export const MAX_SHARD_BYTES = 2_000_000_000;

export interface MergeOptions {
  /** Output dtype of float tensors; default: each tensor keeps its own. */
  dtype?: FloatDtype;
  maxShardBytes?: number;
}

/**
 * The merged checkpoint's tensors: every tensor of the base copied (converted when `dtype` is given), the targeted
 * weights replaced by W + scaling·B·A computed in f32 from the widened base weight.
 */
export function mergeTensors(
  base: readonly CheckpointTensor[],
  modules: readonly LinearModule[],
  adapter: Adapter,
  opts: MergeOptions = {},
): CheckpointTensor[] {
  const byWeight = new Map<string, LinearModule>();
  for (const m of modules) if (adapter.tensors.has(m.name)) byWeight.set(m.weightName, m);
  for (const name of adapter.tensors.keys())
    if (!modules.some((m) => m.name === name))
      throw new Error(`adapter module ${name} is not a linear layer of the base model`);
  const seen = new Set<string>();
  const out = base.map((t): CheckpointTensor => {
    const m = byWeight.get(t.name);
    const dtype = opts.dtype && isFloatDtype(t.dtype) ? ST_DTYPE[opts.dtype] : t.dtype;
    if (!m) {
      if (dtype === t.dtype) return t;
      return { ...t, dtype, data: encodeFloats(toF32(t.dtype as 'F32', t.data), opts.dtype as FloatDtype) };
    }
    seen.add(m.name);
    if (!isFloatDtype(t.dtype)) throw new Error(`${t.name} is ${t.dtype}; only float weights can be merged`);
    const want = m.fanInFanOut ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures];
    if (t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1])
      throw new Error(`${t.name}: shape [${t.shape.join(',')}], expected [${want.join(',')}]`);
    const merged = mergeWeight(
      toF32(t.dtype, t.data),
      m,
      adapter.tensors.get(m.name) as LoraTensors,
      scalingFor(adapter.config, m.name),
    );
    const fd = (Object.keys(ST_DTYPE) as FloatDtype[]).find((k) => ST_DTYPE[k] === dtype) as FloatDtype;
    return { ...t, dtype, data: encodeFloats(merged, fd) };
  });
  for (const name of adapter.tensors.keys()) {
    if (!seen.has(name)) {
      const m = modules.find((x) => x.name === name) as LinearModule;
      throw new Error(`the base checkpoint has no tensor ${m.weightName} for adapter module ${name}`);
    }
  }
  return out;
}

/**
 * model.safetensors, or model-0000i-of-0000n.safetensors + model.safetensors.index.json when the data exceed
 * `maxShardBytes`, as Transformers' save_pretrained shards: tensors in checkpoint order, a new shard when the next
 * tensor would overflow the current one; index `{"metadata": {"total_size"}, "weight_map"}`, indent 2, sorted.
 */
export function checkpointFiles(
  tensors: readonly CheckpointTensor[],
  maxShardBytes = MAX_SHARD_BYTES,
): OutFile[] {
  const shards: CheckpointTensor[][] = [[]];
  let size = 0;
  let total = 0;
  for (const t of tensors) {
    const cur = shards[shards.length - 1];
    if (cur.length > 0 && size + t.data.length > maxShardBytes) {
      shards.push([t]);
      size = t.data.length;
    } else {
      cur.push(t);
      size += t.data.length;
    }
    total += t.data.length;
  }
  const toWrite = (s: CheckpointTensor[]): TensorToWrite[] => s;
  if (shards.length === 1)
    return [{ name: 'model.safetensors', data: writeSafetensors(toWrite(shards[0]), { format: 'pt' }) }];
  const n = shards.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  const files: OutFile[] = [];
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => {
    const name = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    for (const t of s) weightMap[t.name] = name;
    files.push({ name, data: writeSafetensors(toWrite(s), { format: 'pt' }) });
  });
  const index = `${pyJson({ metadata: { total_size: total }, weight_map: weightMap })}\n`;
  files.push({ name: 'model.safetensors.index.json', data: new TextEncoder().encode(index) });
  return files;
}

const TORCH_DTYPE: Record<FloatDtype, string> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };

/**
 * config.json with its dtype field set (torch_dtype, and `dtype` where newer Transformers wrote that), edited in
 * place so every other byte stays as the base model wrote it.
 */
export function withDtype(configText: string, dtype: FloatDtype): string {
  const v = `"${TORCH_DTYPE[dtype]}"`;
  let found = false;
  const out = configText.replace(
    /"(torch_dtype|dtype)"(\s*):(\s*)(?:"[^"]*"|null)/g,
    (_s, k: string, a: string, b: string) => {
      found = true;
      return `"${k}"${a}:${b}${v}`;
    },
  );
  if (found) return out;
  const brace = configText.indexOf('{');
  if (brace < 0) throw new Error('config.json is not a JSON object');
  return `${configText.slice(0, brace + 1)}\n  "torch_dtype": ${v},${configText.slice(brace + 1)}`;
}

/** Files copied unchanged beside the merged weights. */
export const COPIED_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'chat_template.jinja',
  'chat_template.json',
];

/** The merged model's folder: config.json, weights (sharded above 2 GB), and the base's other files copied. */
export function mergedModelFiles(src: {
  configText: string;
  tensors: readonly CheckpointTensor[];
  modules: readonly LinearModule[];
  adapter: Adapter;
  /** Other files of the base folder (tokenizer, generation config); only COPIED_FILES are kept. */
  extra: readonly OutFile[];
  options?: MergeOptions;
}): OutFile[] {
  const opts = src.options ?? {};
  const config = opts.dtype ? withDtype(src.configText, opts.dtype) : src.configText;
  const tensors = mergeTensors(src.tensors, src.modules, src.adapter, opts);
  return [
    { name: 'config.json', data: new TextEncoder().encode(config) },
    ...checkpointFiles(tensors, opts.maxShardBytes),
    ...src.extra.filter((f) => COPIED_FILES.includes(f.name)),
  ];
}
