// Random tiny Llama / Qwen2 / GPT-2 checkpoints, generated in the tests: config.json, weights, and a folder on disk.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelSpec } from '../../src/model/spec';
import { uniform } from './random';

export interface TinyModel {
  /** The config.json a Hugging Face model of this kind would carry. */
  config: Record<string, unknown>;
  /** The spec the reference uses (what config.json means). */
  spec: ModelSpec;
  /** Checkpoint tensors by name, f32, with their shapes. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

type Kind = 'llama' | 'llama3-untied' | 'qwen2' | 'gpt2';

export function tinyModel(kind: Kind, seed = 1): TinyModel {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  let k = seed * 1000;
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const data = uniform(
      shape.reduce((a, b) => a * b, 1),
      k++,
      scale,
    );
    if (offset) for (let i = 0; i < data.length; i++) data[i] += offset;
    tensors.set(name, { shape, data });
  };
  if (kind === 'gpt2') {
    const C = 12;
    const H = 3;
    const V = 50;
    const F = 4 * C;
    const config = {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      n_embd: C,
      n_head: H,
      n_layer: 2,
      n_positions: 64,
      n_inner: null,
      vocab_size: V,
      layer_norm_epsilon: 1e-5,
      activation_function: 'gelu_new',
      bos_token_id: 0,
      eos_token_id: 0,
      tie_word_embeddings: true,
    };
    add('transformer.wte.weight', [V, C], 0.5);
    add('transformer.wpe.weight', [64, C], 0.1);
    for (let l = 0; l < 2; l++) {
      const h = `transformer.h.${l}.`;
      add(`${h}ln_1.weight`, [C], 0.2, 1);
      add(`${h}ln_1.bias`, [C], 0.1);
      add(`${h}attn.c_attn.weight`, [C, 3 * C], 0.4);
      add(`${h}attn.c_attn.bias`, [3 * C], 0.1);
      add(`${h}attn.c_proj.weight`, [C, C], 0.3);
      add(`${h}attn.c_proj.bias`, [C], 0.1);
      add(`${h}ln_2.weight`, [C], 0.2, 1);
      add(`${h}ln_2.bias`, [C], 0.1);
      add(`${h}mlp.c_fc.weight`, [C, F], 0.3);
      add(`${h}mlp.c_fc.bias`, [F], 0.1);
      add(`${h}mlp.c_proj.weight`, [F, C], 0.2);
      add(`${h}mlp.c_proj.bias`, [C], 0.1);
    }
    add('transformer.ln_f.weight', [C], 0.2, 1);
    add('transformer.ln_f.bias', [C], 0.1);
    const spec: ModelSpec = {
      arch: 'gpt2',
      modelType: 'gpt2',
      hiddenSize: C,
      numLayers: 2,
      numHeads: H,
      numKvHeads: H,
      headDim: C / H,
      intermediateSize: F,
      vocabSize: V,
      maxPositions: 64,
      norm: { kind: 'layer', eps: 1e-5 },
      act: 'gelu_tanh',
      tieWordEmbeddings: true,
      attentionBias: true,
      mlpBias: true,
      bosTokenId: 0,
      eosTokenIds: [0],
      dtype: 'f32',
    };
    return { config, spec, tensors };
  }
  const qwen = kind === 'qwen2';
  const untied = kind === 'llama3-untied';
  const C = 16;
  const H = 4;
  const Hkv = 2;
  const D = 8; // head_dim set explicitly: H·D (32) differs from C (16), as Gemma-like configs allow
  const F = 24;
  const V = 40;
  const L = 2;
  const ropeScaling = untied
    ? {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 16,
      }
    : null;
  const config = {
    architectures: [qwen ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: qwen ? 'qwen2' : 'llama',
    hidden_size: C,
    intermediate_size: F,
    num_hidden_layers: L,
    num_attention_heads: H,
    num_key_value_heads: Hkv,
    head_dim: D,
    vocab_size: V,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    rope_theta: untied ? 500000 : 10000,
    rope_scaling: ropeScaling,
    hidden_act: 'silu',
    tie_word_embeddings: !untied,
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
  add('model.embed_tokens.weight', [V, C], 0.5);
  for (let l = 0; l < L; l++) {
    const h = `model.layers.${l}.`;
    add(`${h}input_layernorm.weight`, [C], 0.2, 1);
    add(`${h}self_attn.q_proj.weight`, [H * D, C], 0.4);
    add(`${h}self_attn.k_proj.weight`, [Hkv * D, C], 0.4);
    add(`${h}self_attn.v_proj.weight`, [Hkv * D, C], 0.4);
    if (qwen) {
      add(`${h}self_attn.q_proj.bias`, [H * D], 0.1);
      add(`${h}self_attn.k_proj.bias`, [Hkv * D], 0.1);
      add(`${h}self_attn.v_proj.bias`, [Hkv * D], 0.1);
    }
    add(`${h}self_attn.o_proj.weight`, [C, H * D], 0.3);
    add(`${h}post_attention_layernorm.weight`, [C], 0.2, 1);
    add(`${h}mlp.gate_proj.weight`, [F, C], 0.4);
    add(`${h}mlp.up_proj.weight`, [F, C], 0.4);
    add(`${h}mlp.down_proj.weight`, [C, F], 0.3);
  }
  add('model.norm.weight', [C], 0.2, 1);
  if (untied) add('lm_head.weight', [V, C], 0.5);
  const spec: ModelSpec = {
    arch: qwen ? 'qwen2' : 'llama',
    modelType: qwen ? 'qwen2' : 'llama',
    hiddenSize: C,
    numLayers: L,
    numHeads: H,
    numKvHeads: Hkv,
    headDim: D,
    intermediateSize: F,
    vocabSize: V,
    maxPositions: 128,
    norm: { kind: 'rms', eps: 1e-5 },
    rope: {
      theta: untied ? 500000 : 10000,
      scaling: untied
        ? { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16 }
        : undefined,
    },
    act: 'silu',
    tieWordEmbeddings: !untied,
    attentionBias: qwen,
    mlpBias: false,
    bosTokenId: 1,
    eosTokenIds: [2],
    dtype: 'f32',
  };
  return { config, spec, tensors };
}

/** Float64 copies of the weights, for the reference. */
export function weights64(m: TinyModel): Map<string, Float64Array> {
  return new Map([...m.tensors].map(([k, v]) => [k, Float64Array.from(v.data)]));
}

/** A minimal safetensors file (F32 only), written here so that the tests do not trust the code under test. */
export function safetensorsBytes(tensors: Map<string, { shape: number[]; data: Float32Array }>): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const n of names) {
    const t = tensors.get(n)!;
    header[n] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let p = 8 + json.length;
  for (const n of names) {
    const t = tensors.get(n)!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

/** Writes the model as a Hugging Face folder (config.json + model.safetensors) in a temp dir; returns its path. */
export function writeTinyModel(m: TinyModel): string {
  const dir = mkdtempSync(join(tmpdir(), `tiny-${m.spec.modelType}-`));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(m.config, null, 2));
  writeFileSync(join(dir, 'model.safetensors'), safetensorsBytes(m.tensors));
  return dir;
}

/** Reads an F32 safetensors file into name → Float64Array (for the reference). */
export function readF32Safetensors(bytes: Uint8Array): Map<string, Float64Array> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const out = new Map<string, Float64Array>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`readF32Safetensors: ${name} is ${info.dtype}`);
    const [a, b] = info.data_offsets;
    const raw = Uint8Array.prototype.slice.call(bytes, 8 + len + a, 8 + len + b); // a copy, also for Node Buffers
    out.set(name, Float64Array.from(new Float32Array(raw.buffer)));
  }
  return out;
}
