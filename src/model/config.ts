// Hugging Face config.json → ModelSpec for the supported families, with every problem reported at once.
import type { ModelSpec, RopeScaling } from './spec';

export const SUPPORTED_MODEL_TYPES = ['llama', 'qwen2', 'gpt2'] as const;

/** A config.json we cannot run; the message lists every problem found, so one edit fixes them all. */
export class ConfigError extends Error {
  constructor(
    readonly where: string,
    readonly problems: string[],
  ) {
    super(`${where}: ${problems.length === 1 ? problems[0] : `\n  - ${problems.join('\n  - ')}`}`);
    this.name = 'ConfigError';
  }
}

/** Parses the text of a config.json; `where` names it in errors (e.g. `stories260K-hf/config.json`). */
export function parseConfigText(text: string, where = 'config.json'): ModelSpec {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(where, [`not valid JSON (${(e as Error).message})`]);
  }
  return specFromConfig(json, where);
}

type Json = Record<string, unknown>;

/** Reads fields of one config, collecting problems instead of stopping at the first. */
class Fields {
  readonly problems: string[] = [];
  constructor(readonly c: Json) {}

  /** A positive integer; `fallback` undefined means the field is required. */
  int(key: string, fallback?: number): number {
    const v = this.c[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) this.problems.push(`missing ${key}`);
      return fallback ?? 0;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.problems.push(`${key} must be an integer, got ${JSON.stringify(v)}`);
      return 0;
    }
    if (v <= 0) this.problems.push(`${key} must be positive, got ${v}`);
    return v;
  }

  /** A finite positive number. */
  positive(key: string, fallback: number): number {
    const v = this.c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      this.problems.push(`${key} must be a positive number, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.c[key] ?? fallback;
    if (typeof v !== 'boolean') {
      this.problems.push(`${key} must be true or false, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.c[key] ?? fallback;
    if (!allowed.includes(v as T)) {
      this.problems.push(`${key} ${JSON.stringify(v)} is not supported (supported: ${allowed.join(', ')})`);
      return fallback;
    }
    return v as T;
  }

  tokenId(key: string): number | null {
    const v = this.c[key];
    if (v === undefined || v === null) return null;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
    this.problems.push(`${key} must be a token id, got ${JSON.stringify(v)}`);
    return null;
  }

  tokenIds(key: string): number[] {
    const v = this.c[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (list.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) return list as number[];
    this.problems.push(`${key} must be a token id or a list of them, got ${JSON.stringify(v)}`);
    return [];
  }

  dtype(): ModelSpec['dtype'] {
    // transformers ≥ 4.56 writes `dtype`; older versions `torch_dtype`.
    const v = this.c.torch_dtype ?? this.c.dtype ?? 'float32';
    const map: Record<string, ModelSpec['dtype']> = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' };
    if (typeof v === 'string' && v in map) return map[v];
    this.problems.push(`torch_dtype ${JSON.stringify(v)} is not supported (float32, float16, bfloat16)`);
    return 'f32';
  }
}

/** Validates a parsed config.json and returns the spec; throws ConfigError listing every problem. */
export function specFromConfig(json: unknown, where = 'config.json'): ModelSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(where, ['top level is not a JSON object']);
  }
  const c = json as Json;
  const type = c.model_type;
  if (type !== 'llama' && type !== 'qwen2' && type !== 'gpt2') {
    const archs = Array.isArray(c.architectures) ? ` (${c.architectures.join(', ')})` : '';
    throw new ConfigError(where, [
      `unsupported architecture: model_type ${JSON.stringify(type)}${archs}; supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    ]);
  }
  const f = new Fields(c);
  const spec = type === 'gpt2' ? gpt2Spec(f) : llamaSpec(f, type);
  if (f.problems.length) throw new ConfigError(where, f.problems);
  return spec;
}

/** Llama 2/3/3.2, TinyLlama, SmolLM and Qwen2 share one config shape (Qwen2 adds q/k/v biases). */
function llamaSpec(f: Fields, type: 'llama' | 'qwen2'): ModelSpec {
  const C = f.int('hidden_size');
  const H = f.int('num_attention_heads');
  const Hkv = f.int('num_key_value_heads', H || 1);
  if (C && H && C % H !== 0) f.problems.push(`hidden_size ${C} is not divisible by num_attention_heads ${H}`);
  if (H && Hkv && H % Hkv !== 0) {
    f.problems.push(`num_attention_heads ${H} is not divisible by num_key_value_heads ${Hkv}`);
  }
  const D = f.int('head_dim', H && C % H === 0 ? C / H : 1);
  if (D % 2 !== 0) f.problems.push(`head_dim ${D} must be even for rotary embeddings`);
  f.oneOf('hidden_act', ['silu'] as const, 'silu');
  if (f.c.pretraining_tp !== undefined && f.c.pretraining_tp !== 1) {
    f.problems.push(`pretraining_tp ${JSON.stringify(f.c.pretraining_tp)} is not supported (only 1)`);
  }
  if (type === 'qwen2' && f.c.use_sliding_window === true) {
    f.problems.push('use_sliding_window true is not supported (attention over the full context only)');
  }
  const attentionBias = type === 'qwen2' ? true : f.bool('attention_bias', false);
  return {
    arch: type,
    modelType: type,
    hiddenSize: C,
    numLayers: f.int('num_hidden_layers'),
    numHeads: H,
    numKvHeads: Hkv,
    headDim: D,
    intermediateSize: f.int('intermediate_size'),
    vocabSize: f.int('vocab_size'),
    maxPositions: f.int('max_position_embeddings'),
    norm: { kind: 'rms', eps: f.positive('rms_norm_eps', 1e-6) },
    rope: { theta: f.positive('rope_theta', 10000), scaling: ropeScaling(f) },
    act: 'silu',
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    attentionBias,
    mlpBias: type === 'qwen2' ? false : f.bool('mlp_bias', false),
    bosTokenId: f.tokenId('bos_token_id'),
    eosTokenIds: f.tokenIds('eos_token_id'),
    dtype: f.dtype(),
  };
}

/** Only Llama 3's scaling is implemented; `null` or type "default" mean plain RoPE. */
function ropeScaling(f: Fields): RopeScaling | undefined {
  const s = f.c.rope_scaling;
  if (s === undefined || s === null) return undefined;
  if (typeof s !== 'object' || Array.isArray(s)) {
    f.problems.push(`rope_scaling must be an object or null, got ${JSON.stringify(s)}`);
    return undefined;
  }
  const r = new Fields(s as Json);
  const kind = r.c.rope_type ?? r.c.type;
  if (kind === 'default') return undefined;
  if (kind !== 'llama3') {
    f.problems.push(`rope_scaling type ${JSON.stringify(kind)} is not supported (supported: llama3)`);
    return undefined;
  }
  const scaling: RopeScaling = {
    type: 'llama3',
    factor: r.positive('factor', 8),
    lowFreqFactor: r.positive('low_freq_factor', 1),
    highFreqFactor: r.positive('high_freq_factor', 4),
    originalMaxPositions: r.int('original_max_position_embeddings', 8192),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    r.problems.push('high_freq_factor must exceed low_freq_factor');
  }
  f.problems.push(...r.problems.map((p) => `rope_scaling.${p}`));
  return scaling;
}

function gpt2Spec(f: Fields): ModelSpec {
  const C = f.int('n_embd');
  const H = f.int('n_head');
  if (C && H && C % H !== 0) f.problems.push(`n_embd ${C} is not divisible by n_head ${H}`);
  // gelu_new and gelu_pytorch_tanh are the same tanh approximation.
  f.oneOf('activation_function', ['gelu_new', 'gelu_pytorch_tanh'] as const, 'gelu_new');
  if (f.c.scale_attn_by_inverse_layer_idx === true) {
    f.problems.push('scale_attn_by_inverse_layer_idx true is not supported');
  }
  if (f.c.scale_attn_weights === false) f.problems.push('scale_attn_weights false is not supported');
  if (f.c.add_cross_attention === true) f.problems.push('add_cross_attention true is not supported');
  return {
    arch: 'gpt2',
    modelType: 'gpt2',
    hiddenSize: C,
    numLayers: f.int('n_layer'),
    numHeads: H,
    numKvHeads: H,
    headDim: H && C % H === 0 ? C / H : 0,
    intermediateSize: f.int('n_inner', C ? 4 * C : 1),
    vocabSize: f.int('vocab_size'),
    maxPositions: f.int('n_positions'),
    norm: { kind: 'layer', eps: f.positive('layer_norm_epsilon', 1e-5) },
    act: 'gelu_tanh',
    // PretrainedConfig's default, which GPT2Config keeps.
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
    attentionBias: true,
    mlpBias: true,
    bosTokenId: f.tokenId('bos_token_id'),
    eosTokenIds: f.tokenIds('eos_token_id'),
    dtype: f.dtype(),
  };
}
