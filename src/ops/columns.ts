// Split a matrix into column blocks and join blocks back: GPT-2's fused q|k|v projection and its gradient.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { KernelSpec } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';

const COPY: KernelSpec = { shader: 'columns', entry: 'copy_columns', bindings: ['uniform', 'read', 'rw'] };

function copyColumns(
  ctx: GpuContext,
  src: Tensor,
  srcOff: number,
  dst: Tensor,
  dstOff: number,
  width: number,
): void {
  const [rows, srcCols] = src.shape;
  const dstCols = dst.shape[1];
  if (dst.shape[0] !== rows) throw new Error(`copyColumns: ${src} and ${dst} differ in rows`);
  const groups = Math.ceil((rows * width) / 64);
  const gridX = Math.min(groups, 65535);
  const params = new Params()
    .u32(rows)
    .u32(width)
    .u32(srcCols)
    .u32(srcOff)
    .u32(dstCols)
    .u32(dstOff)
    .u32(gridX)
    .bytes();
  ctx.dispatch(COPY, { bindings: [params, src, dst], workgroups: [gridX, Math.ceil(groups / gridX)] });
}

/** x[N, Σwidths] → one [N, width] tensor per block. */
export function splitColumns(
  ctx: GpuContext,
  x: Tensor,
  widths: readonly number[],
  labels: readonly string[],
): Tensor[] {
  const total = widths.reduce((a, b) => a + b, 0);
  if (x.shape.length !== 2 || x.shape[1] !== total)
    throw new Error(`splitColumns: ${x} is not [N, ${total}]`);
  let off = 0;
  return widths.map((w, i) => {
    const t = ctx.empty([x.shape[0], w], 'f32', labels[i]);
    copyColumns(ctx, x, off, t, 0, w);
    off += w;
    return t;
  });
}

/** Blocks [N, w_i] → one [N, Σw_i] tensor. */
export function concatColumns(ctx: GpuContext, parts: readonly Tensor[], label: string): Tensor {
  const N = parts[0].shape[0];
  const total = parts.reduce((a, p) => a + p.shape[1], 0);
  const out = ctx.empty([N, total], 'f32', label);
  let off = 0;
  for (const p of parts) {
    copyColumns(ctx, p, 0, out, off, p.shape[1]);
    off += p.shape[1];
  }
  return out;
}
