// Counter-based dropout (inverted, as torch.nn.Dropout): the key words, the threshold, and the CPU twin of the mask.

/**
 * What keys one dropout mask. The mask of element i is a pure function of (seed, step, module, i), so backward
 * regenerates it inside the kernels (shaders/dropout.wgsl) and a resumed run draws the same masks.
 */
export interface DropoutKey {
  /** Probability of zeroing an element, in [0, 1). 0 takes the exact no-dropout path. */
  p: number;
  seed: number;
  /** Optimizer step (or micro-step): a new mask every step. */
  step: number;
  /** Module id: a different mask per LoRA module (see `moduleId`). */
  module: number;
}

/** Resolved for a kernel: `active` false means no dropout code runs at all (p = 0 or no key). */
export interface DropoutWords {
  active: boolean;
  seed: number;
  step: number;
  module: number;
  /** Drop when hash < threshold (u32). */
  threshold: number;
  /** 1 / (1 − p), the inverted-dropout scale of kept values. */
  invKeep: number;
}

export const NO_DROPOUT: DropoutWords = {
  active: false,
  seed: 0,
  step: 0,
  module: 0,
  threshold: 0,
  invKeep: 1,
};

const u32 = (v: number, what: string): number => {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`dropout: ${what} ${v} is not a u32`);
  return v;
};

/** round(p · 2^32), clamped to a u32: an element is dropped when its hash is below it. */
export function dropoutThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p = ${p} must be in [0, 1)`);
  return Math.min(0xffffffff, Math.round(p * 2 ** 32));
}

export function dropoutWords(key: DropoutKey | undefined): DropoutWords {
  if (!key || key.p === 0) return NO_DROPOUT;
  return {
    active: true,
    seed: u32(key.seed, 'seed'),
    step: u32(key.step, 'step'),
    module: u32(key.module, 'module'),
    threshold: dropoutThreshold(key.p),
    invKeep: 1 / (1 - key.p),
  };
}

/** CPU twin of `dropout_hash` in shaders/dropout.wgsl (pcg4d, first lane); must stay bit-identical. */
export function dropoutHash(seed: number, step: number, module: number, index: number): number {
  let x = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  let y = (Math.imul(step, 1664525) + 1013904223) >>> 0;
  let z = (Math.imul(module, 1664525) + 1013904223) >>> 0;
  let w = (Math.imul(index, 1664525) + 1013904223) >>> 0;
  for (let round = 0; round < 2; round++) {
    x = (x + Math.imul(y, w)) >>> 0;
    y = (y + Math.imul(z, x)) >>> 0;
    z = (z + Math.imul(x, y)) >>> 0;
    w = (w + Math.imul(y, z)) >>> 0;
    if (round === 0) {
      x = (x ^ (x >>> 16)) >>> 0;
      y = (y ^ (y >>> 16)) >>> 0;
      z = (z ^ (z >>> 16)) >>> 0;
      w = (w ^ (w >>> 16)) >>> 0;
    }
  }
  return x;
}

/** The multiplier of element `index`: 0 when dropped, 1 / (1 − p) when kept, 1 without dropout. */
export function dropoutFactor(key: DropoutKey | undefined, index: number): number {
  const w = dropoutWords(key);
  if (!w.active) return 1;
  return dropoutHash(w.seed, w.step, w.module, index) >= w.threshold ? w.invKeep : 0;
}

/** The kept mask of the first `n` elements (1 kept, 0 dropped), for tests and references. */
export function dropoutMask(key: DropoutKey | undefined, n: number): Uint8Array {
  const w = dropoutWords(key);
  const mask = new Uint8Array(n).fill(1);
  if (!w.active) return mask;
  for (let i = 0; i < n; i++) mask[i] = dropoutHash(w.seed, w.step, w.module, i) >= w.threshold ? 1 : 0;
  return mask;
}

/** A stable u32 id for a module path (FNV-1a), to key its dropout mask: `moduleId('model.layers.0.q_proj')`. */
export function moduleId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
