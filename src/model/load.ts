// Opens a checkpoint (config + sharded safetensors), checks it against the architecture, and uploads it to the GPU.
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import type { Weight } from '../gpu/weight';
import { disposeWeight, rowsPerPart } from '../gpu/weight';
import type { ModelLayout } from './architectures/index';
import { modelLayout } from './architectures/index';
import { parseConfigText } from './config';
import type { SafetensorsDtype, TensorInfo } from './safetensors';
import { aligned, f32ToBf16, f32ToF16, isFloatDtype, SafetensorsFile, toF32 } from './safetensors';
import type { ModelSource } from './sources/source';
import { fileReader, readOptionalText } from './sources/source';
import type { LinearModule, ModelSpec } from './spec';

export { countParams } from './architectures/index';

/** The checkpoint does not match its config.json: missing tensors, wrong shapes, names of another architecture. */
export class CheckpointError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'CheckpointError';
  }
}

/** Text of the tokenizer-side files, for the data and eval code (absent files are undefined). */
export interface ModelFiles {
  tokenizerJson?: string;
  tokenizerConfig?: string;
  generationConfig?: string;
  specialTokensMap?: string;
}

export interface CheckpointTensor {
  /** Weight file holding it. */
  file: SafetensorsFile;
  info: TensorInfo;
}

/** A validated checkpoint whose weights have not been read yet (headers only). */
export interface Checkpoint {
  source: string;
  spec: ModelSpec;
  layout: ModelLayout;
  /** Weight files in load order (one, or the shards of the index). */
  weightFiles: string[];
  /** Every tensor the layout expects, by checkpoint name. */
  tensors: Map<string, CheckpointTensor>;
  /** Bytes of the expected tensors as stored. */
  bytes: number;
  /** Dtypes of the expected tensors as stored (usually one). */
  dtypes: SafetensorsDtype[];
  files: ModelFiles;
}

const INDEX = 'model.safetensors.index.json';
const SINGLE = 'model.safetensors';

/** Reads config.json and the safetensors headers, and checks every tensor name, shape and dtype. Reads no weights. */
export async function openCheckpoint(source: ModelSource): Promise<Checkpoint> {
  const present = await source.list();
  if (!present.includes('config.json')) throw new CheckpointError(source.name, 'no config.json');
  const spec = parseConfigText(await source.readText('config.json'), `${source.name}/config.json`);
  const { weightFiles, weightMap } = await findWeightFiles(source, present);

  const tensors = new Map<string, CheckpointTensor>();
  for (const wf of weightFiles) {
    const file = await SafetensorsFile.open(fileReader(source, wf));
    for (const info of file.header.tensors.values()) {
      const prev = tensors.get(info.name);
      if (prev) {
        throw new CheckpointError(
          source.name,
          `tensor "${info.name}" is in both ${prev.file.reader.name} and ${wf}`,
        );
      }
      tensors.set(info.name, { file, info });
    }
  }
  if (weightMap) {
    for (const [name, wf] of weightMap) {
      const t = tensors.get(name);
      if (!t || t.file.reader.name !== `${source.name}/${wf}`) {
        throw new CheckpointError(
          source.name,
          `${INDEX} puts tensor "${name}" in ${wf}, but that file lacks it`,
        );
      }
    }
  }

  const layout = modelLayout(spec, tensors.keys());
  checkTensors(source.name, layout, tensors);
  const expected = new Map<string, CheckpointTensor>();
  let bytes = 0;
  const dtypes = new Set<SafetensorsDtype>();
  for (const name of layout.expected.keys()) {
    const t = tensors.get(name)!;
    expected.set(name, t);
    bytes += t.info.end - t.info.begin;
    dtypes.add(t.info.dtype);
  }
  const [tokenizerJson, tokenizerConfig, generationConfig, specialTokensMap] = await Promise.all(
    ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json'].map(
      (f) => readOptionalText(source, f),
    ),
  );
  return {
    source: source.name,
    spec,
    layout,
    weightFiles,
    tensors: expected,
    bytes,
    dtypes: [...dtypes],
    files: { tokenizerJson, tokenizerConfig, generationConfig, specialTokensMap },
  };
}

async function findWeightFiles(
  source: ModelSource,
  present: string[],
): Promise<{ weightFiles: string[]; weightMap?: Map<string, string> }> {
  if (present.includes(SINGLE)) return { weightFiles: [SINGLE] };
  if (!present.includes(INDEX)) {
    const bin = present.some((f) => f.endsWith('.bin'))
      ? ' (PyTorch .bin checkpoints are not supported)'
      : '';
    throw new CheckpointError(source.name, `no ${SINGLE} or ${INDEX}${bin}`);
  }
  let index: unknown;
  try {
    index = JSON.parse(await source.readText(INDEX));
  } catch (e) {
    throw new CheckpointError(source.name, `${INDEX} is not valid JSON (${(e as Error).message})`);
  }
  const wm = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new CheckpointError(source.name, `${INDEX} has no weight_map object`);
  }
  const weightMap = new Map<string, string>();
  for (const [name, file] of Object.entries(wm)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) {
      throw new CheckpointError(source.name, `${INDEX}: tensor "${name}" maps to ${JSON.stringify(file)}`);
    }
    weightMap.set(name, file);
  }
  const weightFiles = [...new Set(weightMap.values())].sort();
  for (const f of weightFiles) {
    if (!present.includes(f))
      throw new CheckpointError(source.name, `shard ${f} named by ${INDEX} is missing`);
  }
  return { weightFiles, weightMap };
}

const SHOW = 5;

function listSome(names: string[]): string {
  const head = names.slice(0, SHOW).join(', ');
  return names.length > SHOW ? `${head} (and ${names.length - SHOW} more)` : head;
}

function checkTensors(source: string, layout: ModelLayout, tensors: Map<string, CheckpointTensor>): void {
  const missing: string[] = [];
  const problems: string[] = [];
  for (const [name, shape] of layout.expected) {
    const t = tensors.get(name);
    if (!t) {
      missing.push(name);
      continue;
    }
    const got = t.info.shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      problems.push(
        `tensor "${name}" has shape [${got.join(',')}], config.json implies [${shape.join(',')}]`,
      );
    }
    if (!isFloatDtype(t.info.dtype))
      problems.push(`tensor "${name}" is ${t.info.dtype}; weights must be F32, F16 or BF16`);
  }
  const unexpected = [...tensors.keys()].filter((n) => !layout.expected.has(n) && !layout.ignorable(n));
  if (missing.length) problems.unshift(`missing tensors: ${listSome(missing)}`);
  if (unexpected.length)
    problems.push(`unexpected tensors (another architecture or naming?): ${listSome(unexpected)}`);
  if (problems.length) throw new CheckpointError(source, problems.join('; '));
}

// ---- GPU upload --------------------------------------------------------------------------------------------------

export type WeightsDtype = 'f32' | 'bf16' | 'f16';

export interface LoadProgress {
  /** Tensor just uploaded. */
  tensor: string;
  /** Bytes of the checkpoint read so far, and in all. */
  loaded: number;
  total: number;
}

export interface LoadOptions {
  /** Storage of the 2-D weights on the GPU (default f32). 16-bit weights are packed two per u32 word. */
  weightsDtype?: WeightsDtype;
  onProgress?: (p: LoadProgress) => void;
  /** Split weights into parts of at most this many bytes (default and cap: ctx.maxBindingBytes); for tests. */
  maxBindingBytes?: number;
}

/**
 * A model on the GPU. Tensor names are the checkpoint's; `layout` says how they wire into blocks.
 * Every matrix (embeddings, linear weights, lm_head) is a `Weight` in `weightsDtype`, stored as in the checkpoint:
 * [out, in] for nn.Linear, [in, out] where `module.fanInFanOut` (GPT-2 Conv1D). Every vector (norm weights and biases,
 * linear biases) is an f32 Tensor.
 */
export interface LoadedModel {
  spec: ModelSpec;
  layout: ModelLayout;
  /** Linear modules LoRA can target (layout.modules). */
  modules: LinearModule[];
  /** 2-D tensors by checkpoint name. When tied, `lmHead` is the same object as `embedding`. */
  weights: Map<string, Weight>;
  /** 1-D f32 tensors by checkpoint name. */
  vectors: Map<string, Tensor>;
  embedding: Weight;
  /** GPT-2's learned positions [maxPositions, C]. */
  positionEmbedding?: Weight;
  lmHead: Weight;
  weightsDtype: WeightsDtype;
  files: ModelFiles;
  /** The source's name (folder, Hub id). */
  source: string;
  /** Bytes held on the GPU. */
  gpuBytes: number;
  /** Looks up a weight or vector, throwing with its name when absent (a wiring bug, not a user error). */
  weight(name: string): Weight;
  vector(name: string): Tensor;
  dispose(): void;
}

/** Reads and checks the checkpoint, then uploads one tensor at a time (peak host memory: about one tensor). */
export async function loadModel(
  ctx: GpuContext,
  source: ModelSource,
  o: LoadOptions = {},
): Promise<LoadedModel> {
  const cp = await openCheckpoint(source);
  const dtype = o.weightsDtype ?? 'f32';
  const maxBinding = Math.min(ctx.maxBindingBytes, o.maxBindingBytes ?? Infinity);
  const weights = new Map<string, Weight>();
  const vectors = new Map<string, Tensor>();
  const disposeAll = () => {
    for (const w of weights.values()) disposeWeight(w);
    for (const v of vectors.values()) v.dispose();
  };
  let loaded = 0;
  let gpuBytes = 0;
  try {
    for (const [name, { file, info }] of cp.tensors) {
      const bytes = await file.bytes(name);
      const src = info.dtype as 'F32' | 'F16' | 'BF16';
      if (info.shape.length === 2) {
        const w = uploadWeight(
          ctx,
          name,
          [info.shape[0], info.shape[1]],
          dtype,
          convert(src, bytes, dtype),
          maxBinding,
        );
        weights.set(name, w);
        for (const p of w.parts) gpuBytes += p.bytes;
      } else {
        const t = ctx.upload(toF32(src, bytes), info.shape, 'f32', name);
        vectors.set(name, t);
        gpuBytes += t.bytes;
      }
      loaded += info.end - info.begin;
      o.onProgress?.({ tensor: name, loaded, total: cp.bytes });
    }
    await ctx.sync();
  } catch (e) {
    disposeAll();
    throw e;
  } finally {
    await source.close?.();
  }
  const need = (name: string): Weight => {
    const w = weights.get(name);
    if (!w) throw new Error(`${source.name}: no weight "${name}" in the loaded model`);
    return w;
  };
  return {
    spec: cp.spec,
    layout: cp.layout,
    modules: cp.layout.modules,
    weights,
    vectors,
    embedding: need(cp.layout.embedTokens),
    positionEmbedding: cp.layout.positionEmbeddings ? need(cp.layout.positionEmbeddings) : undefined,
    lmHead: need(cp.layout.lmHead),
    weightsDtype: dtype,
    files: cp.files,
    source: source.name,
    gpuBytes,
    weight: need,
    vector(name) {
      const v = vectors.get(name);
      if (!v) throw new Error(`${source.name}: no vector "${name}" in the loaded model`);
      return v;
    },
    dispose: disposeAll,
  };
}

/** Converts stored bytes to the GPU dtype: exact when widening, round-to-nearest-even when narrowing. */
function convert(
  src: 'F32' | 'F16' | 'BF16',
  bytes: Uint8Array,
  to: WeightsDtype,
): Float32Array | Uint16Array {
  if (to === 'f32') return toF32(src, bytes);
  if ((to === 'bf16' && src === 'BF16') || (to === 'f16' && src === 'F16'))
    return new Uint16Array(aligned(bytes));
  const f32 = toF32(src, bytes);
  return to === 'bf16' ? f32ToBf16(f32) : f32ToF16(f32);
}

/** Uploads a [rows, cols] matrix, split by rows so that no part exceeds `maxBinding` bytes. */
function uploadWeight(
  ctx: GpuContext,
  name: string,
  shape: [number, number],
  dtype: WeightsDtype,
  data: Float32Array | Uint16Array,
  maxBinding: number,
): Weight {
  const [rows, cols] = shape;
  const per = rowsPerPart(shape, dtype, maxBinding);
  const parts: Tensor[] = [];
  try {
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      const label = per >= rows ? name : `${name}[${r0}:${r0 + n}]`;
      parts.push(ctx.upload(data.subarray(r0 * cols, (r0 + n) * cols), [n, cols], dtype, label));
    }
  } catch (e) {
    for (const p of parts) p.dispose();
    throw e;
  }
  return { name, shape, dtype, parts, rowsPerPart: per };
}
