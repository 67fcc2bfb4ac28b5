// The LoRA branch y += s · B(A(dropout(x))): forward and backward through hand-written skinny kernels (shaders/lora.wgsl).
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { KernelSpec } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { expectShape } from '../gpu/tensor';
import type { DropoutKey, DropoutWords } from './dropout';
import { dropoutWords, NO_DROPOUT } from './dropout';
import { spreadGroups } from './elementwise';

export interface LoraForwardOptions {
  /** lora_alpha / r (or / sqrt(r) with rsLoRA), as PEFT's `scaling`. */
  scaling: number;
  /** Absent or p = 0: no dropout, the exact same kernels as without it. */
  dropout?: DropoutKey;
}

export interface LoraBackwardOptions extends LoraForwardOptions {
  /** Multiplies what is added into gradA and gradB (1 / trained tokens of the optimizer step); not dx. */
  gradScale: number;
}

type Entry = 'lora_down' | 'lora_up' | 'lora_grad' | 'lora_grad_reduce';

/** Invocations per workgroup of every LoRA kernel (shaders/lora.wgsl's WG) and rows per lora_up invocation. */
const WG = 64;
const UP_ROWS = 16;

/** Rank columns per invocation of lora_down / lora_grad: a power of two ≥ r, at most 8 (registers). */
function rankTile(r: number): number {
  let rt = 1;
  while (rt < r && rt < 8) rt *= 2;
  return rt;
}

/**
 * Lanes sharing one row in lora_down: one per 128 columns, a power of two in 1..16. Narrow rows (C < 256) take
 * one invocation each, with no reduction; wide ones split their columns so that N·lanes invocations fill a GPU.
 */
function downLanes(C: number): number {
  let lanes = 1;
  while (lanes < 16 && lanes * 2 * 128 <= C) lanes *= 2;
  return lanes;
}

/** Rows per split of lora_grad, and the number of splits: ≥ 64 rows each, at most 64 splits and 16 MB of partials. */
function gradSplit(N: number, C: number, r: number): { chunk: number; splits: number } {
  const maxSplits = Math.max(1, Math.min(64, Math.floor((1 << 22) / (r * C))));
  const chunk = Math.max(64, Math.ceil(N / maxSplits));
  return { chunk, splits: Math.ceil(N / chunk) };
}

function spec(
  entry: Entry,
  r: number,
  f: { wIsB: boolean; dropout: boolean; accumulate?: boolean; split?: boolean; lanes?: number },
): KernelSpec {
  return {
    shader: 'lora',
    entry,
    bindings: ['uniform', 'read', 'read', 'rw'],
    includes: ['dropout'],
    // Entries that ignore RT or LPR get fixed values, which keeps them to one pipeline per flag set.
    prelude: `const RT: u32 = ${entry === 'lora_down' || entry === 'lora_grad' ? rankTile(r) : 8}u;\nconst LPR: u32 = ${f.lanes ?? 1}u;`,
    constants: {
      W_IS_B: f.wIsB ? 1 : 0,
      DROPOUT: f.dropout ? 1 : 0,
      ACCUMULATE: f.accumulate ? 1 : 0,
      SPLIT: f.split ? 1 : 0,
    },
  };
}

function params(
  rows: number,
  cols: number,
  r: number,
  alpha: number,
  d: DropoutWords,
  chunk = 0,
): ArrayBuffer {
  return new Params()
    .u32(rows)
    .u32(cols)
    .u32(r)
    .f32(alpha)
    .u32(d.seed)
    .u32(d.step)
    .u32(d.module)
    .u32(d.threshold)
    .f32(d.invKeep)
    .u32(chunk)
    .bytes();
}

/** Checks the LoRA shapes and returns N, in, out, r. A is [r, in] and B is [out, r], as PEFT's lora_A / lora_B. */
function dims(x: Tensor, A: Tensor, B: Tensor): { N: number; inF: number; outF: number; r: number } {
  if (x.shape.length !== 2 || A.shape.length !== 2 || B.shape.length !== 2) {
    throw new Error(`lora: x ${x}, lora_A ${A} and lora_B ${B} must be 2-D`);
  }
  const [N, inF] = x.shape;
  const [r] = A.shape;
  const [outF] = B.shape;
  expectShape(A, [r, inF], `lora_A ${A.label}`);
  expectShape(B, [outF, r], `lora_B ${B.label}`);
  for (const t of [x, A, B]) if (t.dtype !== 'f32') throw new Error(`lora: ${t} must be f32`);
  if (r < 1) throw new Error(`lora: rank of ${A} must be at least 1`);
  if (Math.ceil(N / 16) > 65535) throw new Error(`lora: ${N} rows of ${x} exceed one dispatch (65535·16)`);
  return { N, inF, outF, r };
}

/** xa-shaped out[N, r] = alpha · drop(wide)·F (lora_down), lanes chosen from the width C. */
function down(
  ctx: GpuContext,
  wide: Tensor,
  factor: Tensor,
  out: Tensor,
  dims: { N: number; C: number; r: number },
  alpha: number,
  d: DropoutWords,
  wIsB: boolean,
  label: string,
): void {
  const { N, C, r } = dims;
  const lanes = downLanes(C);
  const [gx, gy] = spreadGroups(ctx, Math.ceil((N * lanes) / WG));
  ctx.dispatch(spec('lora_down', r, { wIsB, dropout: d.active, lanes }), {
    bindings: [params(N, C, r, alpha, d), wide, factor, out],
    workgroups: [gx, gy, Math.ceil(r / rankTile(r))],
    label,
  });
}

/** G(j, c) += alpha · Σ_n drop(wide)[n, c] · skinny[n, j]: split over N, then an ordered sum of the splits. */
function grad(
  ctx: GpuContext,
  wide: Tensor,
  skinny: Tensor,
  g: Tensor,
  dims: { N: number; C: number; r: number },
  alpha: number,
  d: DropoutWords,
  wIsB: boolean,
  label: string,
): void {
  const { N, C, r } = dims;
  const { chunk, splits } = gradSplit(N, C, r);
  const grid: [number, number, number] = [Math.ceil(C / WG), splits, Math.ceil(r / rankTile(r))];
  if (splits === 1) {
    ctx.dispatch(spec('lora_grad', r, { wIsB, dropout: d.active }), {
      bindings: [params(N, C, r, alpha, d, chunk), wide, skinny, g],
      workgroups: grid,
      label,
    });
    return;
  }
  const partial = ctx.empty([splits, r, C], 'f32', `${label} partials`);
  ctx.dispatch(spec('lora_grad', r, { wIsB, dropout: d.active, split: true }), {
    bindings: [params(N, C, r, 1, d, chunk), wide, skinny, partial],
    workgroups: grid,
    label: `${label} split ${splits}x${chunk}`,
  });
  // in2 is unused by the reduction; the partials stand in (read-only, so the aliasing is legal).
  ctx.dispatch(spec('lora_grad_reduce', r, { wIsB, dropout: false }), {
    bindings: [params(splits, C, r, alpha, NO_DROPOUT), partial, partial, g],
    workgroups: [Math.ceil((r * C) / WG)],
    label: `${label} reduce`,
  });
  partial.dispose();
}

/**
 * Forward: xa = dropout(x)·Aᵀ [N, r], then y += scaling · xa·Bᵀ [N, out] (y holds the frozen layer's output).
 * Saves for backward: xa (returned; the caller owns it). The dropout mask is not saved: backward regenerates it.
 */
export function loraForward(
  ctx: GpuContext,
  x: Tensor, // [N, in]
  A: Tensor, // [r, in]
  B: Tensor, // [out, r]
  y: Tensor, // [N, out]
  o: LoraForwardOptions,
): { xa: Tensor } {
  const { N, inF, outF, r } = dims(x, A, B);
  expectShape(y, [N, outF], `lora y ${y.label}`);
  const d = dropoutWords(o.dropout);
  const xa = ctx.empty([N, r], 'f32', `${A.label}.xa`);
  down(ctx, x, A, xa, { N, C: inF, r }, 1, d, false, `lora xa ${N}x${inF}x${r}`);
  ctx.dispatch(spec('lora_up', r, { wIsB: true, dropout: false, accumulate: true }), {
    bindings: [params(N, outF, r, o.scaling, NO_DROPOUT), xa, B, y],
    workgroups: [Math.ceil(outF / WG), Math.ceil(N / UP_ROWS)],
    label: `lora y ${N}x${r}x${outF}`,
  });
  return { xa };
}

/**
 * Backward, given dy [N, out]; every output accumulates (+=):
 *   dxa    = s · dy·B                        [N, r]   (temporary)
 *   gradB += gradScale · s · dyᵀ·xa          [out, r]
 *   gradA += gradScale · dxaᵀ·dropout(x)     [r, in]
 *   dx    += mask ⊙ (dxa·A) / (1 − p)        [N, in]  (the frozen layer's dX)
 */
export function loraBackward(
  ctx: GpuContext,
  x: Tensor, // [N, in]
  A: Tensor, // [r, in]
  B: Tensor, // [out, r]
  xa: Tensor, // [N, r], saved by loraForward
  dy: Tensor, // [N, out]
  gradA: Tensor, // [r, in]
  gradB: Tensor, // [out, r]
  dx: Tensor, // [N, in]
  o: LoraBackwardOptions,
): void {
  const { N, inF, outF, r } = dims(x, A, B);
  expectShape(xa, [N, r], `lora xa ${xa.label}`);
  expectShape(dy, [N, outF], `lora dy ${dy.label}`);
  expectShape(gradA, [r, inF], `lora gradA ${gradA.label}`);
  expectShape(gradB, [outF, r], `lora gradB ${gradB.label}`);
  expectShape(dx, [N, inF], `lora dx ${dx.label}`);
  const d = dropoutWords(o.dropout);
  const dxa = ctx.empty([N, r], 'f32', `${A.label}.dxa`);
  down(ctx, dy, B, dxa, { N, C: outF, r }, o.scaling, NO_DROPOUT, true, `lora dxa ${N}x${outF}x${r}`);
  grad(
    ctx,
    dy,
    xa,
    gradB,
    { N, C: outF, r },
    o.gradScale * o.scaling,
    NO_DROPOUT,
    true,
    `lora gradB ${outF}x${r}`,
  );
  grad(ctx, x, dxa, gradA, { N, C: inF, r }, o.gradScale, d, false, `lora gradA ${r}x${inF}`);
  ctx.dispatch(spec('lora_up', r, { wIsB: false, dropout: d.active, accumulate: true }), {
    bindings: [params(N, inF, r, 1, d), dxa, A, dx],
    workgroups: [Math.ceil(inF / WG), Math.ceil(N / UP_ROWS)],
    label: `lora dx ${N}x${r}x${inF}`,
  });
  dxa.dispose();
}
