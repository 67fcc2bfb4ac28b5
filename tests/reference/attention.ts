// Float64 reference of causal self-attention with GQA and segments: full score matrices, plain softmax, textbook backward.
import type { AttentionConfig } from '../../src/ops/attention';

/** Whether query t may attend key s of the same row. */
function allowed(seg: ArrayLike<number> | undefined, row: number, T: number, t: number, s: number): boolean {
  return s <= t && (!seg || seg[row * T + s] === seg[row * T + t]);
}

/** Probabilities P[b][h][t][s] (0 where masked) and lse per (b, h, t). */
function probs(q: ArrayLike<number>, k: ArrayLike<number>, cfg: AttentionConfig, seg?: ArrayLike<number>) {
  const { B, T, H, Hkv, D, scale } = cfg;
  const group = H / Hkv;
  const P = new Float64Array(B * H * T * T);
  const lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const row = ((b * H + h) * T + t) * T;
        let m = -Infinity;
        for (let s = 0; s < T; s++) {
          if (!allowed(seg, b, T, t, s)) continue;
          let dot = 0;
          for (let d = 0; d < D; d++)
            dot += q[(b * T + t) * H * D + h * D + d] * k[(b * T + s) * Hkv * D + hk * D + d];
          P[row + s] = scale * dot;
          m = Math.max(m, scale * dot);
        }
        let sum = 0;
        for (let s = 0; s < T; s++) if (allowed(seg, b, T, t, s)) sum += Math.exp(P[row + s] - m);
        for (let s = 0; s < T; s++)
          P[row + s] = allowed(seg, b, T, t, s) ? Math.exp(P[row + s] - m) / sum : 0;
        lse[(b * H + h) * T + t] = m + Math.log(sum);
      }
    }
  return { P, lse };
}

export function attentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  cfg: AttentionConfig,
  seg?: ArrayLike<number>,
): { out: Float64Array; lse: Float64Array } {
  const { B, T, H, Hkv, D } = cfg;
  const { P, lse } = probs(q, k, cfg, seg);
  const out = new Float64Array(B * T * H * D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let t = 0; t < T; t++)
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let s = 0; s < T; s++)
            acc += P[((b * H + h) * T + t) * T + s] * v[(b * T + s) * Hkv * D + hk * D + d];
          out[(b * T + t) * H * D + h * D + d] = acc;
        }
    }
  return { out, lse };
}

/** Gradients of Σ dOut ⊙ out: dS = P ⊙ (dP − rowsum(dP ⊙ P)), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dOut. */
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dOut: ArrayLike<number>,
  cfg: AttentionConfig,
  seg?: ArrayLike<number>,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, T, H, Hkv, D, scale } = cfg;
  const { P } = probs(q, k, cfg, seg);
  const dq = new Float64Array(B * T * H * D);
  const dk = new Float64Array(B * T * Hkv * D);
  const dv = new Float64Array(B * T * Hkv * D);
  const qi = (b: number, t: number, h: number, d: number) => (b * T + t) * H * D + h * D + d;
  const ki = (b: number, s: number, hk: number, d: number) => (b * T + s) * Hkv * D + hk * D + d;
  const dP = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / (H / Hkv));
      for (let t = 0; t < T; t++) {
        const row = ((b * H + h) * T + t) * T;
        let rowDot = 0;
        for (let s = 0; s < T; s++) {
          let acc = 0;
          for (let d = 0; d < D; d++) acc += dOut[qi(b, t, h, d)] * v[ki(b, s, hk, d)];
          dP[s] = acc;
          rowDot += acc * P[row + s];
        }
        for (let s = 0; s < T; s++) {
          const p = P[row + s];
          if (p === 0) continue;
          const ds = p * (dP[s] - rowDot);
          for (let d = 0; d < D; d++) {
            dq[qi(b, t, h, d)] += scale * ds * k[ki(b, s, hk, d)];
            dk[ki(b, s, hk, d)] += scale * ds * q[qi(b, t, h, d)];
            dv[ki(b, s, hk, d)] += p * dOut[qi(b, t, h, d)];
          }
        }
      }
    }
  return { dq, dk, dv };
}
