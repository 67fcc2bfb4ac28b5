// The model's linear layers: frozen weight (+ bias) plus, where targeted, the LoRA branch.
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import type { Weight } from '../gpu/weight';
import { linearBackward, linearForward } from '../ops/linear';
import { loraBackward, loraForward } from '../ops/lora';
import type { Saved } from './block';
import type { LinearModule } from './spec';
import type { LoraParam } from './trainable';

export interface DropoutState {
  p: number;
  seed: number;
  step: number;
}

export class Linears {
  private readonly modules = new Map<string, LinearModule>();
  private readonly lora = new Map<string, { param: LoraParam; id: number }>();
  /** Dropout for the current pass; p = 0 outside training. */
  dropout: DropoutState = { p: 0, seed: 0, step: 0 };

  constructor(
    private readonly ctx: GpuContext,
    modules: readonly LinearModule[],
    private readonly weight: (name: string) => Weight,
    private readonly bias: (name: string) => Tensor,
    lora: readonly LoraParam[],
  ) {
    for (const m of modules) this.modules.set(m.name, m);
    lora.forEach((param, id) => {
      if (!this.modules.has(param.module))
        throw new Error(`LoRA module ${param.module} is not a linear layer of this model`);
      this.lora.set(param.module, { param, id });
    });
  }

  /** y = x·Wᵀ + b (+ scaling·B·A·dropout(x)); saves the LoRA input projection in `s`. */
  forward(m: LinearModule, x: Tensor, s: Saved): Tensor {
    const y = linearForward(
      this.ctx,
      x,
      this.weight(m.weightName),
      m.biasName ? this.bias(m.biasName) : undefined,
      {
        fanInFanOut: m.fanInFanOut,
      },
    );
    const l = this.lora.get(m.name);
    if (l) {
      const { xa } = loraForward(this.ctx, x, l.param.A, l.param.B, y, {
        scaling: l.param.scaling,
        dropout: { ...this.dropout, module: l.id },
      });
      s.set(`xa:${m.name}`, xa);
    }
    return y;
  }

  /** dx of the layer's input; adds the LoRA gradients. Does not consume dy. */
  backward(m: LinearModule, x: Tensor, dy: Tensor, s: Saved): Tensor {
    const dx = linearBackward(this.ctx, dy, this.weight(m.weightName), { fanInFanOut: m.fanInFanOut });
    const l = this.lora.get(m.name);
    if (l) {
      loraBackward(
        this.ctx,
        x,
        l.param.A,
        l.param.B,
        s.get(`xa:${m.name}`),
        dy,
        l.param.gradA,
        l.param.gradB,
        dx,
        {
          scaling: l.param.scaling,
          gradScale: 1, // dy already carries the loss normalisation
          dropout: { ...this.dropout, module: l.id },
        },
      );
    }
    return dx;
  }
}
