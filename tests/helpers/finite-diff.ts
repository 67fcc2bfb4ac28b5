// Central finite differences of a float64 scalar function, to check the analytic gradient of a reference op.
import { rng } from './random';

export interface FdOptions {
  /** Step relative to max(1, |x_i|); 1e-6 balances truncation (h²) against float64 rounding (ε/h). */
  h?: number;
  /** |fd − grad| must be <= abs + rel·|grad| for each checked coordinate. */
  rel?: number;
  abs?: number;
  /** Check at most this many coordinates, chosen by a seeded shuffle (all when x is smaller). */
  maxChecks?: number;
  seed?: number;
}

/**
 * Compares grad[i] with (f(x + h·e_i) − f(x − h·e_i)) / 2h. Returns null when every checked coordinate agrees,
 * else a message naming the worst one. Use f = Σ dy ⊙ op(x) with a random dy to check a vector op's backward.
 * NOTE: the check is only meaningful where f is smooth around x: keep inputs away from kinks (ReLU at 0, max ties).
 */
export function checkGradient(
  f: (x: Float64Array) => number,
  x: ArrayLike<number>,
  grad: ArrayLike<number>,
  o: FdOptions = {},
): string | null {
  const n = x.length;
  if (grad.length !== n) return `gradient has ${grad.length} entries for ${n} inputs`;
  const h = o.h ?? 1e-6;
  const rel = o.rel ?? 1e-6;
  const abs = o.abs ?? 1e-8;
  const idx = Array.from({ length: n }, (_, i) => i);
  const r = rng(o.seed ?? 1);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const xs = Float64Array.from(x);
  let worst: string | null = null;
  let worstExcess = 0;
  for (const i of idx.slice(0, o.maxChecks ?? n)) {
    const step = h * Math.max(1, Math.abs(xs[i]));
    const x0 = xs[i];
    xs[i] = x0 + step;
    const up = f(xs);
    xs[i] = x0 - step;
    const down = f(xs);
    xs[i] = x0;
    // Divide by the steps actually taken: x0 ± step is rounded, and so is the difference.
    const fd = (up - down) / (x0 + step - (x0 - step));
    const err = Math.abs(fd - grad[i]);
    const excess = err - (abs + rel * Math.abs(grad[i]));
    if (!(excess <= 0) && (worst === null || excess > worstExcess || Number.isNaN(excess))) {
      worst = `x[${i}]: finite difference ${fd}, analytic ${grad[i]} (|err| ${err.toExponential(2)})`;
      worstExcess = excess;
    }
  }
  return worst;
}

/** Σ dy ⊙ y in float64: the scalar whose gradient a backward computes for output gradient dy. */
export function dot(dy: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += dy[i] * y[i];
  return s;
}

/** The whole finite-difference gradient of f at p (every coordinate), for tests that compare vectors. */
export function centralDiff(f: (p: Float64Array) => number, p: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const v = p[i];
    p[i] = v + h;
    const up = f(p);
    p[i] = v - h;
    const down = f(p);
    p[i] = v;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}
