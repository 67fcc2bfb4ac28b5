// Tolerances, named per dtype in one place (STYLE.md practice 4). A looser one carries its reason where it is used.

/** f32 kernels against a float64 reference: relative error, with an absolute floor for values near zero. */
export const F32 = { rel: 1e-5, abs: 1e-6 } as const;

export interface Tol {
  rel: number;
  abs: number;
}

/** Largest violation of |got - want| <= abs + rel·|want|, and where; null when all elements pass. */
export function compare(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): string | null {
  if (got.length !== want.length) return `length ${got.length} != ${want.length}`;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const bound = tol.abs + tol.rel * Math.abs(want[i]);
    if (!(err <= bound) && (worst < 0 || err - bound > worstExcess || Number.isNaN(err))) {
      worst = i;
      worstExcess = err - bound;
    }
  }
  if (worst < 0) return null;
  return `element ${worst}: got ${got[worst]}, want ${want[worst]} (|err| ${Math.abs(got[worst] - want[worst]).toExponential(2)})`;
}

/** Relative error of two vectors in the L2 sense, ‖got − want‖ / ‖want‖. */
export function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / (den || 1));
}
