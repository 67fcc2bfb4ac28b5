// Matrix multiply: C = alpha · op(A) · op(B) (+ C), with the transposes forward and backward passes need.
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { KernelSpec } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { readableAs } from './wgsl';

export interface MatmulOptions {
  /** Use Aᵀ: A is stored [.., K, M]. */
  transA?: boolean;
  /** Use Bᵀ: B is stored [.., N, K] (an nn.Linear weight [out, in] used as x·Wᵀ). */
  transB?: boolean;
  /** Add into the existing contents of `out` instead of overwriting them (gradient accumulation). */
  accumulate?: boolean;
  alpha?: number;
  /** Number of matrices; A, B or C with fewer batch elements than this are broadcast (their stride is 0). */
  batch?: number;
}

const TILE = 64;

function spec(o: MatmulOptions, bDtype: Tensor['dtype']): KernelSpec {
  return {
    shader: 'matmul',
    entry: 'matmul',
    bindings: ['uniform', 'read', 'read', 'rw'],
    prelude: readableAs('b', 2, bDtype),
    constants: { TRANS_A: o.transA ? 1 : 0, TRANS_B: o.transB ? 1 : 0, ACCUMULATE: o.accumulate ? 1 : 0 },
  };
}

/** Dimensions (M, K) of op(A) and (K, N) of op(B), checked against each other and against `out`. */
export function matmulDims(a: Tensor, b: Tensor, o: MatmulOptions): { M: number; N: number; K: number } {
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`matmul: ${a} and ${b} must be at least 2-D`);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = o.transA ? [ac, ar] : [ar, ac];
  const [K2, N] = o.transB ? [bc, br] : [br, bc];
  if (K !== K2)
    throw new Error(
      `matmul: inner dimensions differ: ${a} (${o.transA ? 'ᵀ' : ''}) × ${b} (${o.transB ? 'ᵀ' : ''})`,
    );
  return { M, N, K };
}

function batchOf(t: Tensor): number {
  return t.size / (t.shape[t.shape.length - 1] * t.shape[t.shape.length - 2] || 1);
}

/** Records C = alpha · op(A) · op(B) (+ C) into `out`, shape [batch?, M, N]. */
export function matmulInto(ctx: GpuContext, a: Tensor, b: Tensor, out: Tensor, o: MatmulOptions = {}): void {
  const { M, N, K } = matmulDims(a, b, o);
  const batch = o.batch ?? Math.max(batchOf(a), batchOf(b));
  const [cr, cc] = out.shape.slice(-2);
  if (cr !== M || cc !== N || out.size !== M * N * batch) {
    throw new Error(`matmul: output ${out} does not fit [${batch}, ${M}, ${N}]`);
  }
  if (a.dtype !== 'f32' || out.dtype !== 'f32')
    throw new Error(`matmul: A and C must be f32 (got ${a.dtype}, ${out.dtype})`);
  const stride = (t: Tensor, rows: number, cols: number) => {
    const nb = batchOf(t);
    if (nb !== 1 && nb !== batch) throw new Error(`matmul: ${t} has ${nb} matrices, expected 1 or ${batch}`);
    return nb === 1 ? 0 : rows * cols;
  };
  const params = new Params()
    .u32(M)
    .u32(N)
    .u32(K)
    .u32(stride(a, M, K))
    .u32(stride(b, K, N))
    .u32(M * N)
    .f32(o.alpha ?? 1)
    .bytes();
  ctx.dispatch(spec(o, b.dtype), {
    bindings: [params, a, b, out],
    workgroups: [Math.ceil(N / TILE), Math.ceil(M / TILE), batch],
    label: `matmul ${M}x${K}x${N}`,
  });
}

/** Allocates the output and records op(A) · op(B). */
export function matmul(
  ctx: GpuContext,
  a: Tensor,
  b: Tensor,
  o: MatmulOptions = {},
  label = 'matmul',
): Tensor {
  const { M, N } = matmulDims(a, b, o);
  const batch = o.batch ?? Math.max(batchOf(a), batchOf(b));
  const out = ctx.empty(batch === 1 ? [M, N] : [batch, M, N], 'f32', label);
  matmulInto(ctx, a, b, out, { ...o, accumulate: false });
  return out;
}
