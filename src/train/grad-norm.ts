// Deterministic sums of squares over many tensors on the GPU: the global gradient L2 norm, and loss totals.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { KernelSpec } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';

const PARTIALS: KernelSpec = {
  shader: 'reduce',
  entry: 'sumsq_partials',
  bindings: ['uniform', 'read', 'rw'],
};
const FINISH: KernelSpec = { shader: 'reduce', entry: 'sum_partials', bindings: ['uniform', 'read', 'rw'] };

/** Elements summed by one workgroup of `sumsq_partials`. */
export const CHUNK = 4096;
const MAX_GROUPS = 65535;

export interface SumOptions {
  /** Multiplies the total (default 1). */
  scale?: number;
  /** Adds to out[index] instead of overwriting it. */
  accumulate?: boolean;
}

/** Records out[index] = scale · Σ parts[0..count) (+ out[index]): one workgroup, a fixed order. */
export function sumInto(
  ctx: GpuContext,
  parts: Tensor,
  count: number,
  out: Tensor,
  index: number,
  o: SumOptions = {},
): void {
  if (count > Math.max(1, parts.size) || index >= out.size)
    throw new Error(`sumInto: ${parts} (${count}) into ${out}[${index}]`);
  const params = new Params()
    .u32(count)
    .u32(index)
    .f32(o.scale ?? 1)
    .u32(o.accumulate ? 1 : 0)
    .bytes();
  ctx.dispatch(FINISH, { bindings: [params, parts, out], workgroups: [1], label: `sum into ${out.label}` });
}

/**
 * Σ x² over a fixed list of tensors, into one slot of an output tensor. Owns a partials buffer sized for the list,
 * so that each call records the same dispatches and gives the same bits.
 */
export class SumOfSquares {
  private readonly partials: Tensor;
  private readonly offsets: number[] = [];
  readonly count: number;

  constructor(
    private readonly ctx: GpuContext,
    private readonly tensors: readonly Tensor[],
    label = 'sumsq partials',
  ) {
    let n = 0;
    for (const t of tensors) {
      if (t.dtype !== 'f32') throw new Error(`sum of squares: ${t} must be f32`);
      const groups = Math.ceil(t.size / CHUNK);
      if (groups > MAX_GROUPS)
        throw new Error(`sum of squares: ${t} has more than ${MAX_GROUPS * CHUNK} elements`);
      this.offsets.push(n);
      n += groups;
    }
    this.count = n;
    this.partials = ctx.empty([Math.max(1, n)], 'f32', label);
  }

  /** Records out[index] = scale · Σ over all tensors of x² (+ out[index] when accumulating). */
  record(out: Tensor, index: number, o: SumOptions = {}): void {
    this.tensors.forEach((t, k) => {
      const params = new Params().u32(t.size).u32(this.offsets[k]).bytes();
      this.ctx.dispatch(PARTIALS, {
        bindings: [params, t, this.partials],
        workgroups: [Math.ceil(t.size / CHUNK)],
        label: `sumsq ${t.label}`,
      });
    });
    // With no elements at all this still runs, summing nothing: out[index] = 0.
    sumInto(this.ctx, this.partials, this.count, out, index, o);
  }

  dispose(): void {
    this.partials.dispose();
  }
}
