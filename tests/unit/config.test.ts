// config.json → ModelSpec, layouts and parameter counts (fixtures and published configs), and checkpoint checks.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { modelInfo } from '../../src/cli/commands/info';
import { modelLayout } from '../../src/model/architectures/index';
import type { ConfigError } from '../../src/model/config';
import { parseConfigText, specFromConfig } from '../../src/model/config';
import { countParams, openCheckpoint } from '../../src/model/load';
import { FolderSource } from '../../src/model/sources/folder';
import { fixture, hasFixtures } from '../helpers/fixtures';

const config = (dir: string) => readFileSync(fixture(`${dir}/config.json`), 'utf8');

/** Published configs (the fields that matter), with the parameter counts transformers prints for them. */
const PUBLISHED: [string, object, number][] = [
  [
    'gpt2',
    {
      model_type: 'gpt2',
      n_embd: 768,
      n_layer: 12,
      n_head: 12,
      n_positions: 1024,
      vocab_size: 50257,
      n_inner: null,
    },
    124_439_808,
  ],
  [
    'Llama-3.2-1B',
    {
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 64,
      vocab_size: 128256,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
      rope_theta: 500000.0,
      tie_word_embeddings: true,
      torch_dtype: 'bfloat16',
      rope_scaling: {
        factor: 32.0,
        high_freq_factor: 4.0,
        low_freq_factor: 1.0,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
    },
    1_235_814_400,
  ],
  [
    'TinyLlama-1.1B',
    {
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 5632,
      num_hidden_layers: 22,
      num_attention_heads: 32,
      num_key_value_heads: 4,
      vocab_size: 32000,
      max_position_embeddings: 2048,
      tie_word_embeddings: false,
    },
    1_100_048_384,
  ],
  [
    'SmolLM-135M',
    {
      model_type: 'llama',
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      vocab_size: 49152,
      max_position_embeddings: 2048,
      tie_word_embeddings: true,
    },
    134_515_008,
  ],
  [
    'Qwen2-0.5B',
    {
      model_type: 'qwen2',
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      vocab_size: 151936,
      max_position_embeddings: 131072,
      tie_word_embeddings: true,
      rope_theta: 1000000.0,
      use_sliding_window: false,
    },
    494_032_768,
  ],
];

describe('config.json → ModelSpec', () => {
  for (const [name, cfg, params] of PUBLISHED) {
    it(`${name}: ${params.toLocaleString('en-US')} parameters`, () => {
      expect(countParams(specFromConfig(cfg, name))).toBe(params);
    });
  }

  it('Llama 3.2: GQA, head_dim, llama3 rope scaling (rope_type or type), bf16', () => {
    const s = specFromConfig(PUBLISHED[1][1]);
    expect(s).toMatchObject({
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      dtype: 'bf16',
      tieWordEmbeddings: true,
    });
    expect(s.rope).toEqual({
      theta: 500000,
      scaling: {
        type: 'llama3',
        factor: 32,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositions: 8192,
      },
    });
    const old = { ...PUBLISHED[1][1], rope_scaling: { type: 'llama3', factor: 8 } };
    expect(specFromConfig(old).rope?.scaling?.factor).toBe(8);
  });

  it('defaults: head_dim = hidden / heads, kv heads = heads, untied Llama', () => {
    const s = specFromConfig(PUBLISHED[2][1]);
    expect(s).toMatchObject({
      headDim: 64,
      tieWordEmbeddings: false,
      norm: { kind: 'rms', eps: 1e-6 },
      rope: { theta: 10000 },
    });
    const noKv = { ...PUBLISHED[2][1], num_key_value_heads: undefined };
    expect(specFromConfig(noKv).numKvHeads).toBe(32);
  });

  it('GPT-2: n_inner defaults to 4·n_embd, LayerNorm, learned positions, tied', () => {
    const s = specFromConfig(PUBLISHED[0][1]);
    expect(s).toMatchObject({
      arch: 'gpt2',
      intermediateSize: 3072,
      headDim: 64,
      numKvHeads: 12,
      act: 'gelu_tanh',
      tieWordEmbeddings: true,
    });
    expect(s.norm).toEqual({ kind: 'layer', eps: 1e-5 });
    expect(s.rope).toBeUndefined();
  });

  it('rejects what the engine cannot compute, saying what', () => {
    const base = PUBLISHED[2][1];
    expect(() => specFromConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(
      /rope_scaling type "yarn" is not supported \(supported: llama3\)/,
    );
    expect(() => specFromConfig({ ...base, hidden_act: 'gelu' })).toThrow(
      /hidden_act "gelu" is not supported/,
    );
    expect(() => specFromConfig({ ...PUBLISHED[4][1], use_sliding_window: true })).toThrow(
      /use_sliding_window/,
    );
    expect(() => specFromConfig({ ...PUBLISHED[0][1], n_head: 5 })).toThrow(
      /n_embd 768 is not divisible by n_head 5/,
    );
    expect(() => specFromConfig({ ...base, torch_dtype: 'int8' })).toThrow(/torch_dtype "int8"/);
  });
});

describe.skipIf(!hasFixtures)('config fixtures', () => {
  it('stories260K-hf', () => {
    const s = parseConfigText(config('models/stories260K-hf'));
    expect(s).toEqual({
      arch: 'llama',
      modelType: 'llama',
      hiddenSize: 64,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      intermediateSize: 172,
      vocabSize: 512,
      maxPositions: 512,
      norm: { kind: 'rms', eps: 1e-5 },
      rope: { theta: 10000, scaling: undefined },
      act: 'silu',
      tieWordEmbeddings: true,
      attentionBias: false,
      mlpBias: false,
      bosTokenId: 1,
      eosTokenIds: [2],
      dtype: 'f32',
    });
    expect(countParams(s)).toBe(260_032); // llama2c's stories260K
    expect(countParams(parseConfigText(config('models/stories260K-hf-untied')))).toBe(260_032 + 512 * 64);
  });

  it('qwen2-bias: q/k/v biases, none on o_proj', () => {
    const s = parseConfigText(config('models/stories260K-qwen2-bias'));
    expect(s.arch).toBe('qwen2');
    const l0 = modelLayout(s).layers[0];
    if (l0.attn.kind !== 'separate') throw new Error('qwen2 attention should be separate q/k/v');
    expect([l0.attn.q.biasName, l0.attn.k.biasName, l0.attn.v.biasName, l0.attn.o.biasName]).toEqual([
      'model.layers.0.self_attn.q_proj.bias',
      'model.layers.0.self_attn.k_proj.bias',
      'model.layers.0.self_attn.v_proj.bias',
      undefined,
    ]);
    expect(countParams(s)).toBe(260_032 + 5 * (64 + 32 + 32));
  });

  it('gpt2-tiny-random: Conv1D modules with and without the transformer. prefix', () => {
    const s = parseConfigText(config('models/gpt2-tiny-random'));
    expect(s).toMatchObject({
      hiddenSize: 2,
      numHeads: 1,
      intermediateSize: 8,
      maxPositions: 1024,
      vocabSize: 50257,
    });
    const withPrefix = modelLayout(s, ['transformer.wte.weight']);
    expect(withPrefix.modules.map((m) => m.name)).toEqual([
      'transformer.h.0.attn.c_attn',
      'transformer.h.0.attn.c_proj',
      'transformer.h.0.mlp.c_fc',
      'transformer.h.0.mlp.c_proj',
    ]);
    expect(withPrefix.expected.get('transformer.h.0.attn.c_attn.weight')).toEqual([2, 6]);
    expect(withPrefix.modules[0]).toMatchObject({
      kind: 'c_attn',
      inFeatures: 2,
      outFeatures: 6,
      fanInFanOut: true,
    });
    const bare = modelLayout(s, ['wte.weight', 'h.0.ln_1.weight']);
    expect(bare.modules[0].name).toBe('h.0.attn.c_attn');
    expect(bare.embedTokens).toBe('wte.weight');
    expect(bare.ignorable('h.0.attn.masked_bias')).toBe(true);
    expect(bare.ignorable('h.0.attn.c_attn.bias')).toBe(false);
    expect(countParams(s)).toBe(102_640);
  });

  it('malformed configs give config errors naming every problem', () => {
    const err = (dir: string) => {
      try {
        parseConfigText(config(`malformed/models/${dir}`), dir);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error(`${dir} was accepted`);
    };
    expect(err('config_missing_fields').problems).toEqual([
      'missing hidden_size',
      'missing num_attention_heads',
      'missing vocab_size',
    ]);
    expect(err('config_bad_values').problems).toEqual([
      'hidden_size 64 is not divisible by num_attention_heads 7',
      'num_attention_heads 7 is not divisible by num_key_value_heads 3',
      'max_position_embeddings must be positive, got 0',
      'rms_norm_eps must be a positive number, got -1',
    ]);
    expect(err('config_unsupported_arch').message).toMatch(
      /unsupported architecture: model_type "mamba" \(MambaForCausalLM\); supported model types: llama, qwen2, gpt2/,
    );
    const text = readFileSync(fixture('malformed/models/config_not_json.json'), 'utf8');
    expect(() => parseConfigText(text, 'config_not_json.json')).toThrow(
      /config_not_json.json: not valid JSON/,
    );
  });
});

describe.skipIf(!hasFixtures)('checkpoint checks (headers against config.json)', () => {
  const open = (dir: string) => openCheckpoint(new FolderSource(fixture(dir), dir));

  it('missing_tensor names the tensor', async () => {
    await expect(open('malformed/models/missing_tensor')).rejects.toThrow(
      /malformed\/models\/missing_tensor: missing tensors: model.layers.4.mlp.down_proj.weight$/,
    );
  });

  it('wrong_shape_tensor names the tensor and both shapes', async () => {
    await expect(open('malformed/models/wrong_shape_tensor')).rejects.toThrow(
      /tensor "model.embed_tokens.weight" has shape \[500,64\], config.json implies \[512,64\]/,
    );
  });

  it('unexpected_tensor_names reports the missing and the foreign names', async () => {
    const e = (await open('malformed/models/unexpected_tensor_names').catch((x: Error) => x)) as Error;
    expect(e.message).toMatch(/missing tensors: model.layers.0.input_layernorm.weight.*\(and 40 more\)/);
    expect(e.message).toMatch(/unexpected tensors .*transformer.h.0/);
  });

  it('a sharded checkpoint lists both shards and the same tensors as the single file', async () => {
    const single = await open('models/stories260K-hf');
    const sharded = await open('models/stories260K-hf-sharded');
    expect(sharded.weightFiles).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    expect([...sharded.tensors.keys()]).toEqual([...single.tensors.keys()]);
    expect(sharded.bytes).toBe(1_040_128); // the index's total_size
    expect(single.files.tokenizerJson).toContain('"BPE"');
    expect(JSON.parse(single.files.generationConfig!).eos_token_id).toEqual([2, 1]);
  });

  it('info: the report object and the CLI', async () => {
    const info = await modelInfo(new FolderSource(fixture('models/stories260K-hf')));
    expect(info).toMatchObject({
      arch: 'llama',
      params: 260_032,
      storedDtypes: ['F32'],
      weightBytes: 1_040_128,
    });
    expect(info.modules).toHaveLength(35);
    expect(info.modules[1]).toEqual({
      name: 'model.layers.0.self_attn.k_proj',
      inFeatures: 64,
      outFeatures: 32,
      bias: false,
    });
    const out = execFileSync(
      'node',
      ['bin/lora-studio.js', 'info', '--json', '--model', fixture('models/gpt2-tiny-random')],
      {
        encoding: 'utf8',
      },
    );
    const json = JSON.parse(out);
    expect(json.params).toBe(102_640);
    expect(json.modules.map((m: { name: string }) => m.name)).toContain('transformer.h.0.mlp.c_fc');
  });
});
