// Float64 reference of the LoRA branch and of the frozen linear layer, written loop by loop from the formulas.
import type { DropoutKey } from '../../src/ops/dropout';
import { dropoutFactor } from '../../src/ops/dropout';

export interface LoraDims {
  N: number;
  inF: number;
  outF: number;
  r: number;
}

/** factor[n·in + k]: 0 or 1/(1−p) under dropout, 1 without (the CPU twin of the kernels' mask). */
export function dropoutFactors(key: DropoutKey | undefined, n: number): Float64Array {
  const f = new Float64Array(n);
  for (let i = 0; i < n; i++) f[i] = dropoutFactor(key, i);
  return f;
}

/** xa = drop(x)·Aᵀ [N, r]; y = y0 + s · xa·Bᵀ [N, out]. */
export function loraForwardRef(
  x: ArrayLike<number>,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  y0: ArrayLike<number>,
  { N, inF, outF, r }: LoraDims,
  scaling: number,
  dropout?: DropoutKey,
): { xa: Float64Array; y: Float64Array } {
  const m = dropoutFactors(dropout, N * inF);
  const xa = new Float64Array(N * r);
  for (let n = 0; n < N; n++)
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < inF; k++) s += x[n * inF + k] * m[n * inF + k] * A[j * inF + k];
      xa[n * r + j] = s;
    }
  const y = new Float64Array(N * outF);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += xa[n * r + j] * B[o * r + j];
      y[n * outF + o] = y0[n * outF + o] + scaling * s;
    }
  return { xa, y };
}

/** Gradients of Σ dy ⊙ y through the branch: dA and dB scaled by gradScale, dx not (added to dx0, gA0, gB0). */
export function loraBackwardRef(
  x: ArrayLike<number>,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  dy: ArrayLike<number>,
  { N, inF, outF, r }: LoraDims,
  o: { scaling: number; gradScale: number; dropout?: DropoutKey },
  init: { gradA?: ArrayLike<number>; gradB?: ArrayLike<number>; dx?: ArrayLike<number> } = {},
): { gradA: Float64Array; gradB: Float64Array; dx: Float64Array } {
  const m = dropoutFactors(o.dropout, N * inF);
  const { xa } = loraForwardRef(x, A, B, new Float64Array(N * outF), { N, inF, outF, r }, 1, o.dropout);
  const dxa = new Float64Array(N * r);
  for (let n = 0; n < N; n++)
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < outF; k++) s += dy[n * outF + k] * B[k * r + j];
      dxa[n * r + j] = o.scaling * s;
    }
  const gradB = Float64Array.from(init.gradB ?? new Float64Array(outF * r));
  for (let k = 0; k < outF; k++)
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dy[n * outF + k] * xa[n * r + j];
      gradB[k * r + j] += o.gradScale * o.scaling * s;
    }
  const gradA = Float64Array.from(init.gradA ?? new Float64Array(r * inF));
  for (let j = 0; j < r; j++)
    for (let k = 0; k < inF; k++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dxa[n * r + j] * x[n * inF + k] * m[n * inF + k];
      gradA[j * inF + k] += o.gradScale * s;
    }
  const dx = Float64Array.from(init.dx ?? new Float64Array(N * inF));
  for (let n = 0; n < N; n++)
    for (let k = 0; k < inF; k++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += dxa[n * r + j] * A[j * inF + k];
      dx[n * inF + k] += m[n * inF + k] * s;
    }
  return { gradA, gradB, dx };
}

/** y = x·Wᵀ + b for W [out, in] (nn.Linear), or x·W + b for W [in, out] (Conv1D, fanInFanOut). */
export function linearForwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | undefined,
  N: number,
  inF: number,
  outF: number,
  fanInFanOut: boolean,
): Float64Array {
  const y = new Float64Array(N * outF);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < outF; o++) {
      let s = bias ? bias[o] : 0;
      for (let k = 0; k < inF; k++) s += x[n * inF + k] * (fanInFanOut ? w[k * outF + o] : w[o * inF + k]);
      y[n * outF + o] = s;
    }
  return y;
}

/** dx = dy·W for W [out, in], or dy·Wᵀ for W [in, out]. */
export function linearBackwardRef(
  dy: ArrayLike<number>,
  w: ArrayLike<number>,
  N: number,
  inF: number,
  outF: number,
  fanInFanOut: boolean,
): Float64Array {
  const dx = new Float64Array(N * inF);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < inF; k++) {
      let s = 0;
      for (let o = 0; o < outF; o++) s += dy[n * outF + o] * (fanInFanOut ? w[k * outF + o] : w[o * inF + k]);
      dx[n * inF + k] = s;
    }
  return dx;
}
