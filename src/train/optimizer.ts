// AdamW and SGD on the GPU over f32 LoRA tensors, with their state (exp_avg, exp_avg_sq) and step count.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { KernelSpec } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import type { LoraParam } from '../model/trainable';

export type OptimizerKind = 'adamw' | 'sgd';

/** Defaults of transformers.TrainingArguments (adam_beta1 0.9, adam_beta2 0.999, adam_epsilon 1e-8, weight_decay 0). */
export interface OptimizerConfig {
  kind: OptimizerKind;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = {
  kind: 'adamw',
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
};

/** One optimized tensor: its PEFT name, value and gradient (same shape, f32). */
export interface Slot {
  name: string;
  param: Tensor;
  grad: Tensor;
}

/** The slots of LoRA parameters, A then B per module, named as PEFT's state dict names them. */
export function loraSlots(lora: readonly LoraParam[]): Slot[] {
  return lora.flatMap((l) => [
    { name: `base_model.model.${l.module}.lora_A.weight`, param: l.A, grad: l.gradA },
    { name: `base_model.model.${l.module}.lora_B.weight`, param: l.B, grad: l.gradB },
  ]);
}

const ADAMW: KernelSpec = {
  shader: 'optimizer',
  entry: 'adamw',
  bindings: ['uniform', 'rw', 'read', 'rw', 'rw'],
};
const SGD: KernelSpec = { shader: 'optimizer', entry: 'sgd', bindings: ['uniform', 'rw', 'read'] };

const WG = 256;
const ROW = 32768;

/** A 2-D grid of 256-wide workgroups covering n elements (the x dimension is capped below the 65535 limit). */
export function grid1d(n: number): [number, number] {
  const groups = Math.ceil(n / WG);
  return groups <= ROW ? [groups, 1] : [ROW, Math.ceil(groups / ROW)];
}

/** The host-side copy of the optimizer state, as a checkpoint stores it. */
export interface OptimizerSnapshot {
  kind: OptimizerKind;
  /** Updates applied so far (AdamW's t; skipped steps do not count). */
  t: number;
  /** exp_avg and exp_avg_sq per slot name (AdamW only). */
  state: Map<string, { m: Float32Array; v: Float32Array }>;
}

export class Optimizer {
  /** Updates applied so far: AdamW's bias corrections use t after the increment, as torch does. */
  t = 0;
  private readonly m: Tensor[] = [];
  private readonly v: Tensor[] = [];

  constructor(
    private readonly ctx: GpuContext,
    readonly slots: readonly Slot[],
    readonly config: OptimizerConfig,
  ) {
    for (const s of slots) {
      if (s.param.dtype !== 'f32' || s.grad.dtype !== 'f32' || s.param.size !== s.grad.size) {
        throw new Error(
          `optimizer: ${s.name}: parameter ${s.param} and gradient ${s.grad} must be f32 of one size`,
        );
      }
      if (config.kind === 'adamw') {
        this.m.push(ctx.zeros(s.param.shape, 'f32', `${s.name}.exp_avg`));
        this.v.push(ctx.zeros(s.param.shape, 'f32', `${s.name}.exp_avg_sq`));
      }
    }
  }

  /** Bytes of optimizer state on the GPU. */
  get stateBytes(): number {
    return [...this.m, ...this.v].reduce((n, t) => n + t.bytes, 0);
  }

  /**
   * Records one update of every slot with learning rate `lr`; every gradient is multiplied by `gradScale` first
   * (the clipping coefficient, 1 when not clipping).
   */
  step(lr: number, gradScale = 1): void {
    this.t += 1;
    const c = this.config;
    if (c.kind === 'adamw') {
      // NOTE: float64 scalars as torch.optim.AdamW (_single_tensor_adamw) computes them on the host.
      const bc1 = 1 - c.beta1 ** this.t;
      const bc2 = 1 - c.beta2 ** this.t;
      this.slots.forEach((s, k) => {
        const params = new Params()
          .u32(s.param.size)
          .f32(1 - lr * c.weightDecay)
          .f32(c.beta1)
          .f32(c.beta2)
          .f32(c.eps)
          .f32(gradScale)
          .f32(lr / bc1)
          .f32(Math.sqrt(bc2))
          .f32(1 - c.beta1)
          .f32(1 - c.beta2)
          .bytes();
        this.ctx.dispatch(ADAMW, {
          bindings: [params, s.param, s.grad, this.m[k], this.v[k]],
          workgroups: grid1d(s.param.size),
          label: `adamw ${s.name}`,
        });
      });
    } else {
      for (const s of this.slots) {
        const params = new Params().u32(s.param.size).f32(lr).f32(c.weightDecay).f32(gradScale).bytes();
        this.ctx.dispatch(SGD, {
          bindings: [params, s.param, s.grad],
          workgroups: grid1d(s.param.size),
          label: `sgd ${s.name}`,
        });
      }
    }
  }

  /** Reads the state back (for a checkpoint). */
  async snapshot(): Promise<OptimizerSnapshot> {
    const state = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (let k = 0; k < this.m.length; k++) {
      state.set(this.slots[k].name, { m: await this.ctx.read(this.m[k]), v: await this.ctx.read(this.v[k]) });
    }
    return { kind: this.config.kind, t: this.t, state };
  }

  /** Restores a snapshot taken with the same slots and kind (on resume). */
  restore(s: OptimizerSnapshot): void {
    if (s.kind !== this.config.kind) {
      throw new Error(`checkpoint optimizer is ${s.kind}, this run uses ${this.config.kind}`);
    }
    this.t = s.t;
    this.m.forEach((m, k) => {
      const name = this.slots[k].name;
      const st = s.state.get(name);
      if (!st || st.m.length !== m.size || st.v.length !== m.size) {
        throw new Error(`checkpoint optimizer state for ${name} is missing or has the wrong size`);
      }
      this.ctx.write(m, st.m);
      this.ctx.write(this.v[k], st.v);
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
    this.m.length = 0;
    this.v.length = 0;
  }
}
