// The decoder-only model on the GPU: embeddings, blocks, final norm and the LM head with chunked cross-entropy.
// It implements TrainableModel (forward + backward of a micro-batch) and gives logits for evaluation.
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import type { Weight } from '../gpu/weight';
import { lmHeadLogits, lmHeadLoss } from '../ops/cross-entropy';
import { addPositionEmbedding, embeddingForward } from '../ops/embedding';
import { Block, Saved } from './block';
import type { BlockInputs } from './block';
import { Linears } from './linears';
import { normBackward, normForward } from './norms';
import type { ModelLayout } from './architectures/index';
import type { ModelSpec } from './spec';
import type { Batch, LoraParam, StepOptions, TrainableModel } from './trainable';

/** What the decoder needs from a loaded model. */
export interface DecoderModel {
  spec: ModelSpec;
  layout: ModelLayout;
  /** A frozen matrix by checkpoint name (throws naming it when absent). */
  weight(name: string): Weight;
  /** A frozen vector (norm weight, bias) by checkpoint name, f32. */
  vector(name: string): Tensor;
}

export interface DecoderOptions {
  /** Keep only block inputs and recompute each block in backward. */
  gradCheckpointing?: boolean;
  /** LoRA dropout probability during training (forwardBackward only). */
  dropout?: number;
  seed?: number;
}

/** Targets of each position: labels[t+1] in the same row and segment, else -100 (Transformers' shift). */
export function shiftedTargets(b: Batch): Int32Array {
  const out = new Int32Array(b.B * b.T).fill(-100);
  for (let row = 0; row < b.B; row++) {
    for (let t = 0; t + 1 < b.T; t++) {
      const n = row * b.T + t;
      if (b.segmentIds && b.segmentIds[n + 1] !== b.segmentIds[n]) continue;
      out[n] = b.labels[n + 1];
    }
  }
  return out;
}

export class Decoder implements TrainableModel {
  readonly linears: Linears;
  private readonly blocks: Block[];
  private readonly opts: Required<DecoderOptions>;

  constructor(
    private readonly ctx: GpuContext,
    readonly model: DecoderModel,
    readonly lora: readonly LoraParam[],
    opts: DecoderOptions = {},
  ) {
    this.opts = { gradCheckpointing: false, dropout: 0, seed: 0, ...opts };
    const { spec, layout } = model;
    this.linears = new Linears(
      ctx,
      layout.modules,
      (n) => model.weight(n),
      (n) => model.vector(n),
      lora,
    );
    this.blocks = layout.layers.map((l) => new Block(ctx, spec, l, this.linears, (n) => model.vector(n)));
  }

  set gradCheckpointing(on: boolean) {
    this.opts.gradCheckpointing = on;
  }

  zeroGrads(): void {
    for (const p of this.lora) {
      this.ctx.fill(p.gradA, 0);
      this.ctx.fill(p.gradB, 0);
    }
  }

  forwardBackward(batch: Batch, o: StepOptions): void {
    this.linears.dropout = { p: this.opts.dropout, seed: this.opts.seed, step: o.dropoutStep };
    try {
      this.run(batch, o.lossSum, o.gradScale);
    } finally {
      this.linears.dropout = { p: 0, seed: 0, step: 0 };
    }
  }

  forwardLoss(batch: Batch, lossSum: Tensor): void {
    this.run(batch, lossSum, null);
  }

  /** Logits [rows.length, V] at the given flat positions (default: the last position of every row). */
  async logits(batch: Batch, rows?: readonly number[]): Promise<Float32Array> {
    const picks = rows ?? Array.from({ length: batch.B }, (_, r) => r * batch.T + batch.T - 1);
    const inp = this.inputs(batch);
    let x = this.embed(inp);
    for (const block of this.blocks) {
      const s = new Saved();
      const y = block.forward(x, inp, s);
      s.dispose();
      x.dispose();
      x = y;
    }
    const nf = normForward(
      this.ctx,
      this.model.spec,
      x,
      (n) => this.model.vector(n),
      this.model.layout.finalNorm,
    );
    x.dispose();
    const ids = this.ctx.upload(Int32Array.from(picks), [picks.length], 'i32', 'logit rows');
    const hidden = embeddingForward(
      this.ctx,
      {
        name: 'final hidden',
        shape: [batch.B * batch.T, this.model.spec.hiddenSize],
        dtype: 'f32',
        parts: [nf.y],
        rowsPerPart: batch.B * batch.T,
      },
      ids,
    );
    const logits = lmHeadLogits(this.ctx, hidden, this.model.weight(this.model.layout.lmHead));
    const out = await this.ctx.read(logits);
    for (const t of [ids, hidden, logits, nf.y]) t.dispose();
    nf.dispose();
    this.disposeInputs(inp);
    return out;
  }

  /** Forward (and backward when gradScale is not null) of one micro-batch. */
  private run(batch: Batch, lossSum: Tensor, gradScale: number | null): void {
    const { ctx, model } = this;
    const train = gradScale !== null;
    const ckpt = this.opts.gradCheckpointing;
    const inp = this.inputs(batch);
    const targets = ctx.upload(shiftedTargets(batch), [batch.B * batch.T], 'i32', 'targets');

    // Forward. Block inputs are kept for backward; activations too unless checkpointing.
    const inputs: Tensor[] = [];
    const saved: (Saved | null)[] = [];
    let x = this.embed(inp);
    for (const block of this.blocks) {
      const s = new Saved();
      const y = block.forward(x, inp, s);
      if (train && !ckpt) saved.push(s);
      else s.dispose();
      if (train) inputs.push(x);
      else x.dispose();
      x = y;
    }
    const vec = (n: string) => model.vector(n);
    const nf = normForward(ctx, model.spec, x, vec, model.layout.finalNorm);
    const dHidden = lmHeadLoss(ctx, nf.y, model.weight(model.layout.lmHead), targets, {
      gradScale: gradScale ?? 0,
      lossSum,
      wantGrad: train,
    });
    targets.dispose();
    nf.y.dispose();
    if (!train || !dHidden) {
      nf.dispose();
      x.dispose();
      this.disposeInputs(inp);
      return;
    }

    // Backward, block by block in reverse.
    let d = normBackward(ctx, model.spec, x, nf, vec, model.layout.finalNorm, dHidden);
    nf.dispose();
    dHidden.dispose();
    x.dispose();
    for (let l = this.blocks.length - 1; l >= 0; l--) {
      let s = saved[l] ?? null;
      if (!s) {
        // Checkpointing: recompute this block's activations from its input (same dropout masks: same keys).
        s = new Saved();
        this.blocks[l].forward(inputs[l], inp, s).dispose();
      }
      d = this.blocks[l].backward(inputs[l], inp, s, d);
      s.dispose();
      inputs[l].dispose();
    }
    d.dispose();
    this.disposeInputs(inp);
  }

  private inputs(batch: Batch): BlockInputs & { ids: Tensor } {
    const N = batch.B * batch.T;
    if (batch.inputIds.length !== N || batch.labels.length !== N) {
      throw new Error(`batch: input_ids and labels must have B·T = ${N} entries`);
    }
    const V = this.model.spec.vocabSize;
    for (let i = 0; i < N; i++) {
      const id = batch.inputIds[i];
      if (id < 0 || id >= V)
        throw new Error(`batch: token id ${id} at position ${i} is outside the vocabulary (0..${V - 1})`);
      const lab = batch.labels[i];
      if (lab !== -100 && (lab < 0 || lab >= V))
        throw new Error(`batch: label ${lab} at position ${i} is outside the vocabulary`);
    }
    const pos = batch.positionIds ?? Int32Array.from({ length: N }, (_, i) => i % batch.T);
    const maxPos = this.model.spec.maxPositions;
    if (this.model.layout.positionEmbeddings) {
      for (let i = 0; i < N; i++) {
        if (pos[i] >= maxPos)
          throw new Error(`batch: position ${pos[i]} exceeds the model's ${maxPos} positions`);
      }
    }
    return {
      B: batch.B,
      T: batch.T,
      ids: this.ctx.upload(Int32Array.from(batch.inputIds), [N], 'i32', 'input_ids'),
      positions: this.ctx.upload(Int32Array.from(pos), [N], 'i32', 'position_ids'),
      segments: batch.segmentIds
        ? this.ctx.upload(Int32Array.from(batch.segmentIds), [N], 'i32', 'segment_ids')
        : undefined,
    };
  }

  private disposeInputs(inp: BlockInputs & { ids: Tensor }): void {
    inp.ids.dispose();
    inp.positions.dispose();
    inp.segments?.dispose();
  }

  private embed(inp: BlockInputs & { ids: Tensor }): Tensor {
    const x = embeddingForward(this.ctx, this.model.weight(this.model.layout.embedTokens), inp.ids);
    if (this.model.layout.positionEmbeddings)
      addPositionEmbedding(
        this.ctx,
        x,
        this.model.weight(this.model.layout.positionEmbeddings),
        inp.positions,
      );
    return x;
  }
}
