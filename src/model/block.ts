// One transformer block, forward and backward, for both block shapes the engine knows:
// pre-RMSNorm + RoPE + gated MLP (Llama, Qwen2) and pre-LayerNorm + fused qkv + GELU MLP (GPT-2).
// Backward walks the forward in reverse; every frozen linear layer gives dX only, every LoRA branch dA, dB and dX.
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { geluTanhBackward, geluTanhForward, swigluBackward, swigluForward } from '../ops/activation';
import { attentionBackward, attentionForward } from '../ops/attention';
import { concatColumns, splitColumns } from '../ops/columns';
import { addInto } from '../ops/elementwise';
import { ropeBackward, ropeForward } from '../ops/rope';
import type { Linears } from './linears';
import { normBackward, normForward } from './norms';
import type { NormState } from './norms';
import type { ModelSpec } from './spec';
import type { LayerLayout } from './architectures/index';

/** Per-batch inputs shared by every block. */
export interface BlockInputs {
  B: number;
  T: number;
  positions: Tensor; // i32 [N]
  segments?: Tensor; // i32 [N]
}

/** What forward keeps for backward (all of it, or recomputed from the block input when checkpointing). */
export class Saved {
  private readonly tensors = new Map<string, Tensor>();
  norms: NormState[] = [];

  set(key: string, t: Tensor): Tensor {
    this.tensors.set(key, t);
    return t;
  }

  get(key: string): Tensor {
    const t = this.tensors.get(key);
    if (!t) throw new Error(`block backward: ${key} was not saved`);
    return t;
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    for (const n of this.norms) n.dispose();
    this.tensors.clear();
    this.norms = [];
  }
}

export class Block {
  constructor(
    private readonly ctx: GpuContext,
    private readonly spec: ModelSpec,
    private readonly layout: LayerLayout,
    private readonly linears: Linears,
    private readonly vectors: (name: string) => Tensor,
  ) {}

  /** x [N, C] → y [N, C]; fills `s` with what backward needs. Does not consume x. */
  forward(x: Tensor, inp: BlockInputs, s: Saved): Tensor {
    const { ctx, spec, layout: w, linears } = this;
    const H = spec.numHeads;
    const Hkv = spec.numKvHeads;
    const D = spec.headDim;

    const n1 = normForward(ctx, spec, x, this.vectors, w.inputNorm);
    s.norms.push(n1);
    const a = s.set('a', n1.y);
    let q: Tensor;
    let k: Tensor;
    let v: Tensor;
    if (w.attn.kind === 'fused') {
      const qkv = linears.forward(w.attn.qkv, a, s);
      [q, k, v] = splitColumns(ctx, qkv, [H * D, Hkv * D, Hkv * D], ['q', 'k', 'v']);
      qkv.dispose();
    } else {
      const qp = linears.forward(w.attn.q, a, s);
      const kp = linears.forward(w.attn.k, a, s);
      v = linears.forward(w.attn.v, a, s);
      q = ropeForward(ctx, qp, inp.positions, H, spec.rope!);
      k = ropeForward(ctx, kp, inp.positions, Hkv, spec.rope!);
      qp.dispose();
      kp.dispose();
    }
    s.set('q', q);
    s.set('k', k);
    s.set('v', v);
    const cfg = { B: inp.B, T: inp.T, H, Hkv, D, scale: 1 / Math.sqrt(D) };
    const att = attentionForward(ctx, q, k, v, cfg, inp.segments);
    s.set('att', att.out);
    s.set('lse', att.lse);
    const o = linears.forward(w.attn.o, att.out, s);
    addInto(ctx, o, x); // o := x + attention output (the residual stream after attention)
    const x2 = s.set('x2', o);

    const n2 = normForward(ctx, spec, x2, this.vectors, w.postAttentionNorm);
    s.norms.push(n2);
    const b = s.set('b', n2.y);
    let m: Tensor;
    if (w.mlp.kind === 'gated') {
      const g = s.set('g', linears.forward(w.mlp.gate, b, s));
      const u = s.set('u', linears.forward(w.mlp.up, b, s));
      m = swigluForward(ctx, g, u);
    } else {
      const f = s.set('f', linears.forward(w.mlp.fc, b, s));
      m = geluTanhForward(ctx, f);
    }
    s.set('m', m);
    const y = linears.forward(w.mlp.kind === 'gated' ? w.mlp.down : w.mlp.proj, m, s);
    addInto(ctx, y, x2);
    return y;
  }

  /** dy [N, C] → dx [N, C]; adds LoRA gradients. Consumes dy. */
  backward(x: Tensor, inp: BlockInputs, s: Saved, dy: Tensor): Tensor {
    const { ctx, spec, layout: w, linears } = this;
    const H = spec.numHeads;
    const Hkv = spec.numKvHeads;
    const D = spec.headDim;
    const [n1, n2] = s.norms;

    // MLP: y = x2 + down(act(...)); dy flows to x2 unchanged and through the MLP.
    const dm = linears.backward(w.mlp.kind === 'gated' ? w.mlp.down : w.mlp.proj, s.get('m'), dy, s);
    let db: Tensor;
    if (w.mlp.kind === 'gated') {
      const { dGate, dUp } = swigluBackward(ctx, s.get('g'), s.get('u'), dm);
      db = linears.backward(w.mlp.gate, s.get('b'), dGate, s);
      const dbUp = linears.backward(w.mlp.up, s.get('b'), dUp, s);
      addInto(ctx, db, dbUp);
      for (const t of [dGate, dUp, dbUp]) t.dispose();
    } else {
      const df = geluTanhBackward(ctx, s.get('f'), dm);
      db = linears.backward(w.mlp.fc, s.get('b'), df, s);
      df.dispose();
    }
    dm.dispose();
    const dx2 = normBackward(ctx, spec, s.get('x2'), n2, this.vectors, w.postAttentionNorm, db);
    db.dispose();
    addInto(ctx, dx2, dy);
    dy.dispose();

    // Attention: x2 = x + out(attn(q, k, v)).
    const dAtt = linears.backward(w.attn.o, s.get('att'), dx2, s);
    const cfg = { B: inp.B, T: inp.T, H, Hkv, D, scale: 1 / Math.sqrt(D) };
    const { dq, dk, dv } = attentionBackward(
      ctx,
      s.get('q'),
      s.get('k'),
      s.get('v'),
      s.get('att'),
      s.get('lse'),
      dAtt,
      cfg,
      inp.segments,
    );
    dAtt.dispose();
    let da: Tensor;
    if (w.attn.kind === 'fused') {
      const dqkv = concatColumns(ctx, [dq, dk, dv], 'd qkv');
      da = linears.backward(w.attn.qkv, s.get('a'), dqkv, s);
      dqkv.dispose();
    } else {
      const dqp = ropeBackward(ctx, dq, inp.positions, H, spec.rope!);
      const dkp = ropeBackward(ctx, dk, inp.positions, Hkv, spec.rope!);
      da = linears.backward(w.attn.q, s.get('a'), dqp, s);
      const dak = linears.backward(w.attn.k, s.get('a'), dkp, s);
      const dav = linears.backward(w.attn.v, s.get('a'), dv, s);
      addInto(ctx, da, dak);
      addInto(ctx, da, dav);
      for (const t of [dqp, dkp, dak, dav]) t.dispose();
    }
    for (const t of [dq, dk, dv]) t.dispose();
    const dx = normBackward(ctx, spec, x, n1, this.vectors, w.inputNorm, da);
    da.dispose();
    addInto(ctx, dx, dx2);
    dx2.dispose();
    return dx;
  }
}
