// Seeded random numbers for tests: the product's generator (mulberry32), so the same data on every run.
import { seededRandom } from '../../src/util/random';

export const rng = seededRandom;

/** n values uniform in [-scale, scale). */
export function uniform(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}
