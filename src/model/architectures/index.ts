// The layout of a checkpoint: its tensor names and shapes, the LoRA-targetable linear modules, and how a block is wired.
import type { Arch, LinearModule, ModelSpec } from '../spec';
import { gpt2Layout } from './gpt2';
import { llamaLayout } from './llama';
import { qwen2Layout } from './qwen2';

export interface NormNames {
  weight: string;
  /** LayerNorm (GPT-2) has a bias; RMSNorm does not. */
  bias?: string;
}

/** Llama/Qwen2: separate q, k, v projections. GPT-2: one fused c_attn [C → 3C], output columns in q, k, v order. */
export type AttnModules =
  | { kind: 'separate'; q: LinearModule; k: LinearModule; v: LinearModule; o: LinearModule }
  | { kind: 'fused'; qkv: LinearModule; o: LinearModule };

/** Llama/Qwen2: down(silu(gate x) · up x). GPT-2: proj(gelu_tanh(fc x)). */
export type MlpModules =
  | { kind: 'gated'; gate: LinearModule; up: LinearModule; down: LinearModule }
  | { kind: 'plain'; fc: LinearModule; proj: LinearModule };

/** One pre-norm block: x += attn(inputNorm(x)); x += mlp(postAttentionNorm(x)). */
export interface LayerLayout {
  index: number;
  inputNorm: NormNames;
  postAttentionNorm: NormNames;
  attn: AttnModules;
  mlp: MlpModules;
}

export interface ModelLayout {
  /** Token embedding [V, C]. */
  embedTokens: string;
  /** Learned position embedding [maxPositions, C] (GPT-2 only). */
  positionEmbeddings?: string;
  layers: LayerLayout[];
  finalNorm: NormNames;
  /** Output projection [V, C]; equals `embedTokens` when the embeddings are tied. */
  lmHead: string;
  /** Every linear module LoRA can target, in layer order (attention before MLP). */
  modules: LinearModule[];
  /** Every tensor the checkpoint must hold, with its shape as stored. */
  expected: Map<string, number[]>;
  /** Tensors a checkpoint may carry that the model does not use (buffers saved by old versions, a tied lm_head). */
  ignorable(name: string): boolean;
}

/** The layout for a spec; GPT-2 needs the checkpoint's names to know whether they carry the `transformer.` prefix. */
export function modelLayout(spec: ModelSpec, checkpointNames?: Iterable<string>): ModelLayout {
  const arch: Arch = spec.arch;
  switch (arch) {
    case 'llama':
      return llamaLayout(spec);
    case 'qwen2':
      return qwen2Layout(spec);
    case 'gpt2':
      return gpt2Layout(spec, checkpointNames);
    default:
      return arch satisfies never;
  }
}

/** A linear module named as PEFT names it; its weight is `${name}.weight`, its bias (if any) `${name}.bias`. */
export function linear(
  name: string,
  layer: number,
  inFeatures: number,
  outFeatures: number,
  o: { bias: boolean; fanInFanOut?: boolean },
): LinearModule {
  return {
    name,
    kind: name.slice(name.lastIndexOf('.') + 1),
    layer,
    inFeatures,
    outFeatures,
    weightName: `${name}.weight`,
    biasName: o.bias ? `${name}.bias` : undefined,
    fanInFanOut: o.fanInFanOut ?? false,
  };
}

export interface LayoutParts {
  embedTokens: string;
  positionEmbeddings?: string;
  layers: LayerLayout[];
  finalNorm: NormNames;
  /** Name of the untied output projection. */
  lmHead: string;
  ignorable?: RegExp;
}

/** Derives the module list and the expected tensors (with shapes) from the names an architecture file gives. */
export function buildLayout(spec: ModelSpec, p: LayoutParts): ModelLayout {
  const C = spec.hiddenSize;
  const expected = new Map<string, number[]>();
  const modules: LinearModule[] = [];
  expected.set(p.embedTokens, [spec.vocabSize, C]);
  if (p.positionEmbeddings) expected.set(p.positionEmbeddings, [spec.maxPositions, C]);
  const norm = (n: NormNames) => {
    expected.set(n.weight, [C]);
    if (n.bias) expected.set(n.bias, [C]);
  };
  for (const layer of p.layers) {
    norm(layer.inputNorm);
    norm(layer.postAttentionNorm);
    const attn =
      layer.attn.kind === 'separate' ? [layer.attn.q, layer.attn.k, layer.attn.v] : [layer.attn.qkv];
    const mlp =
      layer.mlp.kind === 'gated'
        ? [layer.mlp.gate, layer.mlp.up, layer.mlp.down]
        : [layer.mlp.fc, layer.mlp.proj];
    for (const m of [...attn, layer.attn.o, ...mlp]) {
      modules.push(m);
      expected.set(
        m.weightName,
        m.fanInFanOut ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures],
      );
      if (m.biasName) expected.set(m.biasName, [m.outFeatures]);
    }
  }
  norm(p.finalNorm);
  if (!spec.tieWordEmbeddings) expected.set(p.lmHead, [spec.vocabSize, C]);
  const tiedHead = spec.tieWordEmbeddings ? p.lmHead : null;
  return {
    embedTokens: p.embedTokens,
    positionEmbeddings: p.positionEmbeddings,
    layers: p.layers,
    finalNorm: p.finalNorm,
    lmHead: spec.tieWordEmbeddings ? p.embedTokens : p.lmHead,
    modules,
    expected,
    // A tied checkpoint may still carry lm_head.weight (some exporters write the shared tensor twice).
    ignorable: (name) => name === tiedHead || (p.ignorable?.test(name) ?? false),
  };
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Parameters of the base model as PyTorch counts `sum(p.numel() for p in model.parameters())`: tied embeddings
 * once, buffers (rotary inv_freq, GPT-2's attention mask) not at all.
 */
export function countParams(spec: ModelSpec): number {
  let n = 0;
  for (const shape of modelLayout(spec).expected.values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}
