// Seeded shuffling, train/eval split and exact-duplicate detection, reproducible across runs and machines.
import { seededRandom } from '../util/random';
import type { Example } from './types';

export { seededRandom };

/** Fisher–Yates shuffle of a copy. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rnd = seededRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Splits off round(fraction · n) items for evaluation (at least 1 when fraction > 0 and n > 1), chosen by a seeded
 * shuffle; both parts keep the original order.
 */
export function splitTrainEval<T>(
  items: readonly T[],
  fraction: number,
  seed: number,
): { train: T[]; eval: T[] } {
  if (!(fraction >= 0 && fraction < 1))
    throw new RangeError(`eval fraction must be in [0, 1), got ${fraction}`);
  const n = items.length;
  let k = Math.round(fraction * n);
  if (fraction > 0 && n > 1) k = Math.min(n - 1, Math.max(1, k));
  const idx = seededShuffle(
    items.map((_, i) => i),
    seed,
  );
  const isEval = new Uint8Array(n);
  for (let i = 0; i < k; i++) isEval[idx[i]] = 1;
  const train: T[] = [];
  const evalSet: T[] = [];
  items.forEach((x, i) => (isEval[i] ? evalSet : train).push(x));
  return { train, eval: evalSet };
}

/** A 64-bit (two FNV-1a lanes) fingerprint of an example's tokens and labels: equal examples, equal keys. */
export function exampleKey(e: Example): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ e.inputIds.length;
  const mix = (x: number) => {
    h1 = Math.imul(h1 ^ x, 0x01000193);
    h2 = Math.imul(h2 ^ (x * 2654435761), 0x5bd1e995);
    h2 ^= h2 >>> 13;
  };
  for (let i = 0; i < e.inputIds.length; i++) mix(e.inputIds[i]);
  for (let i = 0; i < e.labels.length; i++) mix(e.labels[i]);
  return `${(h1 >>> 0).toString(36)}:${(h2 >>> 0).toString(36)}:${e.inputIds.length}`;
}

/** Drops later exact duplicates (same tokens, same mask); returns the kept examples and the rows dropped. */
export function dedupe(examples: readonly Example[]): { kept: Example[]; duplicateRows: number[] } {
  const seen = new Set<string>();
  const kept: Example[] = [];
  const duplicateRows: number[] = [];
  for (const e of examples) {
    const k = exampleKey(e);
    if (seen.has(k)) duplicateRows.push(e.row);
    else {
      seen.add(k);
      kept.push(e);
    }
  }
  return { kept, duplicateRows };
}
