// Llama (2, 3, 3.2, TinyLlama, SmolLM): tensor names and block wiring, as transformers' LlamaForCausalLM saves them.
import type { ModelSpec } from '../spec';
import type { LayerLayout, ModelLayout } from './index';
import { buildLayout, linear, range } from './index';

/** `qkvBias` / `oBias`: Llama's attention_bias puts a bias on all four projections; Qwen2 on q, k, v only. */
export function llamaLayout(
  spec: ModelSpec,
  bias: { qkv: boolean; o: boolean } = { qkv: spec.attentionBias, o: spec.attentionBias },
): ModelLayout {
  const { hiddenSize: C, numHeads: H, numKvHeads: Hkv, headDim: D, intermediateSize: F } = spec;
  const mlpBias = { bias: spec.mlpBias };
  const layers = range(spec.numLayers).map((i): LayerLayout => {
    const p = `model.layers.${i}`;
    return {
      index: i,
      inputNorm: { weight: `${p}.input_layernorm.weight` },
      postAttentionNorm: { weight: `${p}.post_attention_layernorm.weight` },
      attn: {
        kind: 'separate',
        q: linear(`${p}.self_attn.q_proj`, i, C, H * D, { bias: bias.qkv }),
        k: linear(`${p}.self_attn.k_proj`, i, C, Hkv * D, { bias: bias.qkv }),
        v: linear(`${p}.self_attn.v_proj`, i, C, Hkv * D, { bias: bias.qkv }),
        o: linear(`${p}.self_attn.o_proj`, i, H * D, C, { bias: bias.o }),
      },
      mlp: {
        kind: 'gated',
        gate: linear(`${p}.mlp.gate_proj`, i, C, F, mlpBias),
        up: linear(`${p}.mlp.up_proj`, i, C, F, mlpBias),
        down: linear(`${p}.mlp.down_proj`, i, F, C, mlpBias),
      },
    };
  });
  return buildLayout(spec, {
    embedTokens: 'model.embed_tokens.weight',
    layers,
    finalNorm: { weight: 'model.norm.weight' },
    lmHead: 'lm_head.weight',
    // Saved by transformers < 4.31 as a buffer; recomputed from rope_theta.
    ignorable: /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/,
  });
}
