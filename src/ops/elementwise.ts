// Elementwise ops on f32 tensors (add, in-place add, bias, scale), a strided 2-D copy, and the grid helper they share.
import type { GpuContext } from '../gpu/context';
import type { DType } from '../gpu/dtype';
import type { KernelSpec } from '../gpu/kernel';
import { Params } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { expectShape } from '../gpu/tensor';
import { readableAs } from './wgsl';

/** Invocations per workgroup of the elementwise kernels (shaders/elementwise.wgsl's WG). */
const WG = 256;

/**
 * Spreads `groups` workgroups over x and y so that neither exceeds maxComputeWorkgroupsPerDimension (65535).
 * Kernels recover the flat index as wid.x + wid.y · num_workgroups.x and skip the surplus of the last row.
 */
export function spreadGroups(ctx: GpuContext, groups: number): [number, number] {
  const max = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

function spec(entry: string, bindings: KernelSpec['bindings'], srcDtype: DType = 'f32'): KernelSpec {
  // Every entry of the file shares the module, so the `src` declaration is always present.
  return { shader: 'elementwise', entry, bindings, prelude: readableAs('src', 2, srcDtype) };
}

interface EwParams {
  n: number;
  cols?: number;
  scale?: number;
  srcOff?: number;
  srcLd?: number;
  dstOff?: number;
  dstLd?: number;
}

function params(p: EwParams): ArrayBuffer {
  return new Params()
    .u32(p.n)
    .u32(p.cols ?? 1)
    .f32(p.scale ?? 1)
    .u32(p.srcOff ?? 0)
    .u32(p.srcLd ?? 0)
    .u32(p.dstOff ?? 0)
    .u32(p.dstLd ?? 0)
    .bytes();
}

function expectF32(t: Tensor, op: string): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${t} must be f32`);
}

function run(ctx: GpuContext, s: KernelSpec, p: EwParams, bindings: Tensor[], label: string): void {
  ctx.dispatch(s, {
    bindings: [params(p), ...bindings],
    workgroups: spreadGroups(ctx, Math.ceil(p.n / WG)),
    label,
  });
}

/** out = a + b, same shape; b may be stored f32, f16 or bf16. */
export function add(ctx: GpuContext, a: Tensor, b: Tensor, label = 'add'): Tensor {
  expectF32(a, 'add');
  expectShape(b, a.shape, `add: ${b.label} (b)`);
  const out = ctx.empty(a.shape, 'f32', label);
  run(ctx, spec('add', ['uniform', 'rw', 'read', 'read'], b.dtype), { n: a.size }, [out, b, a], label);
  return out;
}

/** target += src (residual streams, gradient accumulation); src may be stored f32, f16 or bf16. */
export function addInto(ctx: GpuContext, target: Tensor, src: Tensor): void {
  expectF32(target, 'addInto');
  expectShape(src, target.shape, `addInto: ${src.label} (src)`);
  run(
    ctx,
    spec('add_into', ['uniform', 'rw', 'read'], src.dtype),
    { n: target.size },
    [target, src],
    'add_into',
  );
}

/** x[N, C] += bias[C] in place; the bias may be stored f32, f16 or bf16. */
export function addBias(ctx: GpuContext, x: Tensor, bias: Tensor): void {
  expectF32(x, 'addBias');
  if (x.shape.length !== 2) throw new Error(`addBias: ${x} must be [N, C]`);
  const C = x.shape[1];
  expectShape(bias, [C], `addBias: ${bias.label} (bias)`);
  run(
    ctx,
    spec('add_bias', ['uniform', 'rw', 'read'], bias.dtype),
    { n: x.size, cols: C },
    [x, bias],
    'add_bias',
  );
}

/** x *= s in place. */
export function scale(ctx: GpuContext, x: Tensor, s: number): void {
  expectF32(x, 'scale');
  run(ctx, spec('scale', ['uniform', 'rw']), { n: x.size, scale: s }, [x], 'scale');
}

export interface Copy2d {
  rows: number;
  cols: number;
  /** Element offset and row stride (leading dimension) in src; srcLd defaults to cols. */
  srcOffset?: number;
  srcLd?: number;
  dstOffset?: number;
  dstLd?: number;
}

/**
 * dst[dstOffset + r·dstLd + c] = src[srcOffset + r·srcLd + c] for r < rows, c < cols: a block of rows or columns
 * moved between tensors (a chunk of hidden rows, one weight part's logit columns). src may be any float dtype.
 */
export function copy2d(ctx: GpuContext, src: Tensor, dst: Tensor, o: Copy2d): void {
  expectF32(dst, 'copy2d');
  const { rows, cols } = o;
  const srcOff = o.srcOffset ?? 0;
  const srcLd = o.srcLd ?? cols;
  const dstOff = o.dstOffset ?? 0;
  const dstLd = o.dstLd ?? cols;
  if (rows === 0 || cols === 0) return;
  const last = (off: number, ld: number) => off + (rows - 1) * ld + cols;
  if (srcLd < cols || last(srcOff, srcLd) > src.size)
    throw new Error(`copy2d: ${rows}x${cols} block at ${srcOff} (ld ${srcLd}) exceeds ${src}`);
  if (dstLd < cols || last(dstOff, dstLd) > dst.size)
    throw new Error(`copy2d: ${rows}x${cols} block at ${dstOff} (ld ${dstLd}) exceeds ${dst}`);
  run(
    ctx,
    spec('copy2d', ['uniform', 'rw', 'read'], src.dtype),
    { n: rows * cols, cols, srcOff, srcLd, dstOff, dstLd },
    [dst, src],
    `copy2d ${rows}x${cols}`,
  );
}
