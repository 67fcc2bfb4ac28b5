// Float64 references of the norm, RoPE, activation, embedding and cross-entropy ops: the oracle for their GPU tests.
type Arr = ArrayLike<number>;

// ---- norms: x [N, C] ------------------------------------------------------------------------------

export function rmsNormRef(x: Arr, w: Arr, N: number, C: number, eps: number) {
  const y = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = w[c] * x[n * C + c] * r;
  }
  return { y, rstd };
}

export function rmsNormBackwardRef(x: Arr, w: Arr, dy: Arr, N: number, C: number, eps: number): Float64Array {
  const { rstd } = rmsNormRef(x, w, N, C, eps);
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += w[c] * dy[n * C + c] * x[n * C + c];
    for (let c = 0; c < C; c++)
      dx[n * C + c] = r * w[c] * dy[n * C + c] - ((r * r * r) / C) * dot * x[n * C + c];
  }
  return dx;
}

export function layerNormRef(x: Arr, w: Arr, b: Arr, N: number, C: number, eps: number) {
  const y = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[n * C + c];
    const m = s / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[n * C + c] - m) ** 2;
    const r = 1 / Math.sqrt(v / C + eps);
    mean[n] = m;
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - m) * r * w[c] + b[c];
  }
  return { y, mean, rstd };
}

export function layerNormBackwardRef(
  x: Arr,
  w: Arr,
  dy: Arr,
  N: number,
  C: number,
  eps: number,
): Float64Array {
  const { mean, rstd } = layerNormRef(x, w, new Float64Array(C), N, C, eps);
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < C; c++) {
      const g = w[c] * dy[n * C + c];
      sg += g;
      sgx += g * (x[n * C + c] - mean[n]) * rstd[n];
    }
    for (let c = 0; c < C; c++) {
      const xhat = (x[n * C + c] - mean[n]) * rstd[n];
      dx[n * C + c] = rstd[n] * (w[c] * dy[n * C + c] - sg / C - (xhat * sgx) / C);
    }
  }
  return dx;
}

// ---- RoPE: x [N, H·D], rotate_half pairs (i, i + D/2) ------------------------------------------------

export interface RopeRefConfig {
  theta: number;
  headDim: number;
  scaling?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };
}

/** inv_freq[D/2] as transformers' default and llama3 rope init compute it (here in float64). */
export function ropeInvFreqRef(cfg: RopeRefConfig): Float64Array {
  const D = cfg.headDim;
  const inv = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = 1 / cfg.theta ** ((2 * i) / D);
  const s = cfg.scaling;
  if (!s) return inv;
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) return f / s.factor;
    if (wavelen < highWavelen) return f;
    const smooth =
      (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return ((1 - smooth) * f) / s.factor + smooth * f;
  });
}

/**
 * y = x·cos + rotate_half(x)·sin per head; `sign` −1 rotates by the negative angle (the backward).
 * NOTE: the angle is position · inv_freq rounded to f32, as HF computes it (inv_freq and position in f32); cos,
 * sin and the rotation are float64. Without the rounding, positions in the thousands differ by ~1e-4 rad.
 */
export function ropeRef(x: Arr, pos: Arr, N: number, H: number, cfg: RopeRefConfig, sign = 1): Float64Array {
  const D = cfg.headDim;
  const inv = ropeInvFreqRef(cfg);
  const y = new Float64Array(N * H * D);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      const base = (n * H + h) * D;
      for (let i = 0; i < D / 2; i++) {
        const angle = Math.fround(Math.fround(pos[n]) * Math.fround(inv[i]));
        const c = Math.cos(angle);
        const s = sign * Math.sin(angle);
        const x1 = x[base + i];
        const x2 = x[base + i + D / 2];
        y[base + i] = x1 * c - x2 * s;
        y[base + i + D / 2] = x2 * c + x1 * s;
      }
    }
  }
  return y;
}

// ---- activations ---------------------------------------------------------------------------------

const sigmoid = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

export function swigluRef(gate: Arr, up: Arr): Float64Array {
  return Float64Array.from(gate, (g, i) => g * sigmoid(g) * up[i]);
}

export function swigluBackwardRef(gate: Arr, up: Arr, dh: Arr): { dGate: Float64Array; dUp: Float64Array } {
  const dGate = new Float64Array(gate.length);
  const dUp = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const s = sigmoid(gate[i]);
    dUp[i] = dh[i] * gate[i] * s;
    dGate[i] = dh[i] * up[i] * s * (1 + gate[i] * (1 - s));
  }
  return { dGate, dUp };
}

const GELU_K = Math.sqrt(2 / Math.PI);

/** GPT-2's gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluTanhRef(x: Arr): Float64Array {
  return Float64Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(GELU_K * (v + 0.044715 * v ** 3))));
}

export function geluTanhBackwardRef(x: Arr, dy: Arr): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const t = Math.tanh(GELU_K * (v + 0.044715 * v ** 3));
    // 1 − t² computed as sech², which stays exact (0) where t rounds to ±1.
    const sech2 = 1 - t * t;
    return dy[i] * (0.5 * (1 + t) + 0.5 * v * sech2 * GELU_K * (1 + 3 * 0.044715 * v * v));
  });
}

// ---- embedding -------------------------------------------------------------------------------------

/** out[n, :] = table[clamp(ids[n], 0, V − 1), :]. */
export function embeddingRef(table: Arr, ids: Arr, V: number, C: number): Float64Array {
  const out = new Float64Array(ids.length * C);
  for (let n = 0; n < ids.length; n++) {
    const id = Math.min(Math.max(ids[n], 0), V - 1);
    for (let c = 0; c < C; c++) out[n * C + c] = table[id * C + c];
  }
  return out;
}

// ---- lm_head + cross-entropy -------------------------------------------------------------------------

export const IGNORE_INDEX = -100;

/** logits[N, V] = hidden[N, C] · W[V, C]ᵀ. */
export function lmHeadLogitsRef(hidden: Arr, w: Arr, N: number, C: number, V: number): Float64Array {
  const out = new Float64Array(N * V);
  for (let n = 0; n < N; n++)
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += hidden[n * C + c] * w[v * C + c];
      out[n * V + v] = s;
    }
  return out;
}

/**
 * Summed loss over rows whose target is not ignored, and dHidden = gradScale · (softmax − onehot) · W
 * (zero rows for ignored targets). Targets outside [0, V) are ignored too, as the kernel does.
 */
export function lmHeadLossRef(
  hidden: Arr,
  w: Arr,
  targets: Arr,
  N: number,
  C: number,
  V: number,
  gradScale: number,
) {
  const logits = lmHeadLogitsRef(hidden, w, N, C, V);
  const dHidden = new Float64Array(N * C);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (!(t >= 0 && t < V)) continue;
    const row = logits.subarray(n * V, (n + 1) * V);
    const m = Math.max(...row);
    let s = 0;
    for (const l of row) s += Math.exp(l - m);
    const lse = m + Math.log(s);
    loss += lse - row[t];
    for (let v = 0; v < V; v++) {
      const d = gradScale * (Math.exp(row[v] - lse) - (v === t ? 1 : 0));
      for (let c = 0; c < C; c++) dHidden[n * C + c] += d * w[v * C + c];
    }
  }
  return { loss, dHidden, logits };
}
