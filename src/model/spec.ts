// ModelSpec: everything the engine needs to know about a causal LM, parsed from a Hugging Face config.json.
// Shape letters used across the engine: B batch, T sequence, N = B·T rows, C hidden, H query heads,
// Hkv key/value heads, D head dim, F MLP width, V vocab, L layers, r LoRA rank.

export type Arch = 'llama' | 'qwen2' | 'gpt2';

export interface RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

export interface ModelSpec {
  arch: Arch;
  /** config.json's model_type as written. */
  modelType: string;
  hiddenSize: number; // C
  numLayers: number; // L
  numHeads: number; // H
  numKvHeads: number; // Hkv (H for GPT-2)
  headDim: number; // D
  intermediateSize: number; // F
  vocabSize: number; // V
  maxPositions: number;
  norm: { kind: 'rms' | 'layer'; eps: number };
  /** RoPE (Llama, Qwen2); absent for GPT-2's learned positions. Rotation is HF's rotate_half (pairs i, i + D/2). */
  rope?: { theta: number; scaling?: RopeScaling };
  act: 'silu' | 'gelu_tanh';
  tieWordEmbeddings: boolean;
  /** q/k/v biases (Qwen2: true; GPT-2 has biases on every linear layer). */
  attentionBias: boolean;
  mlpBias: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** Weight dtype the checkpoint declares (torch_dtype). */
  dtype: 'f32' | 'f16' | 'bf16';
}

/** One linear layer LoRA can target, named as PEFT names modules. */
export interface LinearModule {
  /** Module path as PEFT sees it, e.g. `model.layers.0.self_attn.q_proj` or `transformer.h.0.attn.c_attn`. */
  name: string;
  /** Last segment of the name (`q_proj`, `c_attn`): what PEFT's target_modules list matches. */
  kind: string;
  layer: number;
  inFeatures: number;
  outFeatures: number;
  /** Tensor key of the weight in the checkpoint. */
  weightName: string;
  biasName?: string;
  /** GPT-2 Conv1D stores the weight as [in, out]; nn.Linear as [out, in]. */
  fanInFanOut: boolean;
}
