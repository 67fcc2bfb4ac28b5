// The LoRA branch y += s · B(A(dropout(x))): forward and backward through hand-written skinny kernels (shaders/lora.wgsl).
import type { GpuContext } from '../gpu/context';
import { Params } from '../gpu/kernel';
import type { KernelSpec } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { expectShape } from '../gpu/tensor';
import type { DropoutKey, DropoutWords } from './dropout';
import { dropoutWords, NO_DROPOUT } from './dropout';

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

type Entry = 'lora_down' | 'lora_up' | 'lora_grad';

/** Rank columns per workgroup of lora_down / lora_grad: a power of two ≥ r, at most 8 (8 KB of partial sums). */
function rankTile(r: number): number {
  let rt = 1;
  while (rt < r && rt < 8) rt *= 2;
  return rt;
}

function spec(
  entry: Entry,
  r: number,
  f: { wIsB: boolean; dropout: boolean; accumulate?: boolean },
): KernelSpec {
  return {
    shader: 'lora',
    entry,
    bindings: ['uniform', 'read', 'read', 'rw'],
    includes: ['dropout'],
    // lora_up ignores RT; a fixed value keeps it to one pipeline per flag set.
    prelude: `const RT: u32 = ${entry === 'lora_up' ? 8 : rankTile(r)}u;`,
    constants: { W_IS_B: f.wIsB ? 1 : 0, DROPOUT: f.dropout ? 1 : 0, ACCUMULATE: f.accumulate ? 1 : 0 },
  };
}

function params(rows: number, cols: number, r: number, alpha: number, d: DropoutWords): ArrayBuffer {
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

const grid16 = (n: number) => Math.ceil(n / 16);

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
  ctx.dispatch(spec('lora_down', r, { wIsB: false, dropout: d.active }), {
    bindings: [params(N, inF, r, 1, d), x, A, xa],
    workgroups: [grid16(N), Math.ceil(r / rankTile(r))],
    label: `lora xa ${N}x${inF}x${r}`,
  });
  ctx.dispatch(spec('lora_up', r, { wIsB: true, dropout: false, accumulate: true }), {
    bindings: [params(N, outF, r, o.scaling, NO_DROPOUT), xa, B, y],
    workgroups: [Math.ceil(outF / 64), grid16(N)],
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
  const rt = rankTile(r);
  const dxa = ctx.empty([N, r], 'f32', `${A.label}.dxa`);
  ctx.dispatch(spec('lora_down', r, { wIsB: true, dropout: false }), {
    bindings: [params(N, outF, r, o.scaling, NO_DROPOUT), dy, B, dxa],
    workgroups: [grid16(N), Math.ceil(r / rt)],
    label: `lora dxa ${N}x${outF}x${r}`,
  });
  ctx.dispatch(spec('lora_grad', r, { wIsB: true, dropout: false }), {
    bindings: [params(N, outF, r, o.gradScale * o.scaling, NO_DROPOUT), dy, xa, gradB],
    workgroups: [Math.ceil(outF / 32), Math.ceil(r / rt)],
    label: `lora gradB ${outF}x${r}`,
  });
  ctx.dispatch(spec('lora_grad', r, { wIsB: false, dropout: d.active }), {
    bindings: [params(N, inF, r, o.gradScale, d), x, dxa, gradA],
    workgroups: [Math.ceil(inF / 32), Math.ceil(r / rt)],
    label: `lora gradA ${r}x${inF}`,
  });
  ctx.dispatch(spec('lora_up', r, { wIsB: false, dropout: d.active, accumulate: true }), {
    bindings: [params(N, inF, r, 1, d), dxa, A, dx],
    workgroups: [Math.ceil(inF / 64), grid16(N)],
    label: `lora dx ${N}x${r}x${inF}`,
  });
  dxa.dispose();
}
