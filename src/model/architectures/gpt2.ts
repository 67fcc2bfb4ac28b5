// GPT-2: tensor names (with or without `transformer.`), Conv1D weights stored [in, out], learned positions.
import type { ModelSpec } from '../spec';
import type { LayerLayout, ModelLayout } from './index';
import { buildLayout, linear, range } from './index';

/**
 * GPT2LMHeadModel saves `transformer.h.0…`, GPT2Model saves `h.0…`; PEFT module names follow the checkpoint's.
 * Without checkpoint names the prefix is assumed, as save_pretrained of the LM writes it.
 */
export function gpt2Layout(spec: ModelSpec, checkpointNames?: Iterable<string>): ModelLayout {
  const prefix = hasPrefix(checkpointNames) ? 'transformer.' : '';
  const { hiddenSize: C, intermediateSize: F } = spec;
  // Conv1D computes x · W + b with W [in, out]: PEFT's fan_in_fan_out.
  const conv = { bias: true, fanInFanOut: true };
  const layers = range(spec.numLayers).map((i): LayerLayout => {
    const p = `${prefix}h.${i}`;
    return {
      index: i,
      inputNorm: { weight: `${p}.ln_1.weight`, bias: `${p}.ln_1.bias` },
      postAttentionNorm: { weight: `${p}.ln_2.weight`, bias: `${p}.ln_2.bias` },
      attn: {
        kind: 'fused',
        qkv: linear(`${p}.attn.c_attn`, i, C, 3 * C, conv),
        o: linear(`${p}.attn.c_proj`, i, C, C, conv),
      },
      mlp: {
        kind: 'plain',
        fc: linear(`${p}.mlp.c_fc`, i, C, F, conv),
        proj: linear(`${p}.mlp.c_proj`, i, F, C, conv),
      },
    };
  });
  return buildLayout(spec, {
    embedTokens: `${prefix}wte.weight`,
    positionEmbeddings: `${prefix}wpe.weight`,
    layers,
    finalNorm: { weight: `${prefix}ln_f.weight`, bias: `${prefix}ln_f.bias` },
    lmHead: 'lm_head.weight',
    // The causal-mask buffers older transformers saved with every checkpoint.
    ignorable: /^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$/,
  });
}

function hasPrefix(names: Iterable<string> | undefined): boolean {
  if (!names) return true;
  for (const n of names) if (n.startsWith('transformer.')) return true;
  return false;
}
