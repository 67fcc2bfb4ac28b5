// Float64 reference of the whole model (Llama, Qwen2, GPT-2) with LoRA: loss and every LoRA gradient, by hand.
// Written independently of src/ (its own tensor names and math) so that it can serve as the oracle for the GPU engine.
import type { ModelSpec } from '../../src/model/spec';

export type RefWeights = Map<string, Float64Array>;

export interface RefLora {
  A: Float64Array; // [r, in]
  B: Float64Array; // [out, r]
  r: number;
  scaling: number;
}

export interface RefBatch {
  B: number;
  T: number;
  inputIds: ArrayLike<number>;
  labels: ArrayLike<number>;
  positionIds?: ArrayLike<number>;
  segmentIds?: ArrayLike<number>;
}

export interface RefResult {
  lossSum: number;
  tokens: number;
  /** Logits [N, V] of every position. */
  logits: Float64Array;
  grads: Map<string, { dA: Float64Array; dB: Float64Array }>;
}

// ---- dense helpers: row-major matrices -------------------------------------------------------

/** y[N,out] = x[N,in] · Wᵀ where W is [out,in] (or x · W for W [in,out] when fanInFanOut). */
function linear(
  x: Float64Array,
  N: number,
  inF: number,
  outF: number,
  W: Float64Array,
  fanInFanOut: boolean,
): Float64Array {
  const y = new Float64Array(N * outF);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += x[n * inF + i] * (fanInFanOut ? W[i * outF + o] : W[o * inF + i]);
      y[n * outF + o] = s;
    }
  }
  return y;
}

/** dx[N,in] = dy[N,out] · W (or dy · Wᵀ for [in,out]). */
function linearBack(
  dy: Float64Array,
  N: number,
  inF: number,
  outF: number,
  W: Float64Array,
  fanInFanOut: boolean,
): Float64Array {
  const dx = new Float64Array(N * inF);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outF; o++) {
      const g = dy[n * outF + o];
      if (g === 0) continue;
      for (let i = 0; i < inF; i++) dx[n * inF + i] += g * (fanInFanOut ? W[i * outF + o] : W[o * inF + i]);
    }
  }
  return dx;
}

function addInPlace(a: Float64Array, b: Float64Array): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return a;
}

// ---- the model --------------------------------------------------------------------------------

interface Names {
  embed: string;
  pos?: string;
  finalNorm: string;
  finalNormBias?: string;
  head: string;
  layer(l: number): {
    ln1: string;
    ln2: string;
    ln1b?: string;
    ln2b?: string;
    lin: Record<string, { module: string; w: string; b?: string; inF: number; outF: number }>;
  };
}

function names(spec: ModelSpec, gpt2Prefix = 'transformer.'): Names {
  const C = spec.hiddenSize;
  const F = spec.intermediateSize;
  if (spec.arch === 'gpt2') {
    const p = gpt2Prefix;
    return {
      embed: `${p}wte.weight`,
      pos: `${p}wpe.weight`,
      finalNorm: `${p}ln_f.weight`,
      finalNormBias: `${p}ln_f.bias`,
      head: `${p}wte.weight`,
      layer(l) {
        const h = `${p}h.${l}.`;
        const lin = (m: string, inF: number, outF: number) => ({
          module: `${h}${m}`,
          w: `${h}${m}.weight`,
          b: `${h}${m}.bias`,
          inF,
          outF,
        });
        return {
          ln1: `${h}ln_1.weight`,
          ln1b: `${h}ln_1.bias`,
          ln2: `${h}ln_2.weight`,
          ln2b: `${h}ln_2.bias`,
          lin: {
            qkv: lin('attn.c_attn', C, 3 * C),
            o: lin('attn.c_proj', C, C),
            fc: lin('mlp.c_fc', C, F),
            down: lin('mlp.c_proj', F, C),
          },
        };
      },
    };
  }
  const D = spec.headDim;
  const kvF = spec.numKvHeads * D;
  return {
    embed: 'model.embed_tokens.weight',
    finalNorm: 'model.norm.weight',
    head: spec.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight',
    layer(l) {
      const h = `model.layers.${l}.`;
      const lin = (m: string, inF: number, outF: number, bias: boolean) => ({
        module: `${h}${m}`,
        w: `${h}${m}.weight`,
        b: bias ? `${h}${m}.bias` : undefined,
        inF,
        outF,
      });
      const ab = spec.attentionBias;
      return {
        ln1: `${h}input_layernorm.weight`,
        ln2: `${h}post_attention_layernorm.weight`,
        lin: {
          q: lin('self_attn.q_proj', C, spec.numHeads * D, ab),
          k: lin('self_attn.k_proj', C, kvF, ab),
          v: lin('self_attn.v_proj', C, kvF, ab),
          o: lin('self_attn.o_proj', spec.numHeads * D, C, false),
          gate: lin('mlp.gate_proj', C, F, spec.mlpBias),
          up: lin('mlp.up_proj', C, F, spec.mlpBias),
          down: lin('mlp.down_proj', F, C, spec.mlpBias),
        },
      };
    },
  };
}

/** inv_freq as transformers computes it, with llama3 scaling when configured. */
export function refInvFreq(spec: ModelSpec): Float64Array {
  const D = spec.headDim;
  const rope = spec.rope!;
  const inv = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = 1 / rope.theta ** ((2 * i) / D);
  const s = rope.scaling;
  if (s) {
    const lowWl = s.originalMaxPositions / s.lowFreqFactor;
    const highWl = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < inv.length; i++) {
      const wl = (2 * Math.PI) / inv[i];
      if (wl > lowWl) inv[i] = inv[i] / s.factor;
      else if (wl >= highWl) {
        const smooth = (s.originalMaxPositions / wl - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

export function refForwardBackward(
  spec: ModelSpec,
  W: RefWeights,
  lora: Map<string, RefLora>,
  batch: RefBatch,
  o: { wantGrads?: boolean; gpt2Prefix?: string } = {},
): RefResult {
  const nm = names(spec, o.gpt2Prefix);
  const get = (n: string) => {
    const t = W.get(n);
    if (!t) throw new Error(`reference: missing weight ${n}`);
    return t;
  };
  const { B, T } = batch;
  const N = B * T;
  const C = spec.hiddenSize;
  const H = spec.numHeads;
  const Hkv = spec.numKvHeads;
  const D = spec.headDim;
  const V = spec.vocabSize;
  const eps = spec.norm.eps;
  const gpt2 = spec.arch === 'gpt2';
  const fanInFanOut = gpt2;
  const pos = (n: number) => (batch.positionIds ? batch.positionIds[n] : n % T);
  const seg = (n: number) => (batch.segmentIds ? batch.segmentIds[n] : 0);
  const inv = spec.rope ? refInvFreq(spec) : null;

  // -- ops with their backward closures ---------------------------------------------------------
  const norm = (x: Float64Array, w: Float64Array, b?: Float64Array) => {
    const y = new Float64Array(N * C);
    const stats: { mean: number; rstd: number }[] = [];
    for (let n = 0; n < N; n++) {
      const row = x.subarray(n * C, (n + 1) * C);
      let mean = 0;
      if (!gpt2) mean = 0;
      else for (const v of row) mean += v / C;
      let ms = 0;
      for (const v of row) ms += (v - mean) ** 2 / C;
      const rstd = 1 / Math.sqrt(ms + eps);
      stats.push({ mean, rstd });
      for (let c = 0; c < C; c++) y[n * C + c] = (row[c] - mean) * rstd * w[c] + (b ? b[c] : 0);
    }
    const back = (dy: Float64Array) => {
      const dx = new Float64Array(N * C);
      for (let n = 0; n < N; n++) {
        const { mean, rstd } = stats[n];
        let s1 = 0;
        let s2 = 0;
        for (let c = 0; c < C; c++) {
          const g = dy[n * C + c] * w[c];
          const xh = (x[n * C + c] - mean) * rstd;
          s1 += g;
          s2 += g * xh;
        }
        for (let c = 0; c < C; c++) {
          const g = dy[n * C + c] * w[c];
          const xh = (x[n * C + c] - mean) * rstd;
          dx[n * C + c] = gpt2 ? rstd * (g - s1 / C - (xh * s2) / C) : rstd * (g - (xh * s2) / C);
        }
      }
      return dx;
    };
    return { y, back };
  };

  const grads = new Map<string, { dA: Float64Array; dB: Float64Array }>();
  const lin = (x: Float64Array, L: { module: string; w: string; b?: string; inF: number; outF: number }) => {
    const w = get(L.w);
    const y = linear(x, N, L.inF, L.outF, w, fanInFanOut);
    if (L.b) {
      const b = get(L.b);
      for (let n = 0; n < N; n++) for (let j = 0; j < L.outF; j++) y[n * L.outF + j] += b[j];
    }
    const ad = lora.get(L.module);
    let xa: Float64Array | null = null;
    if (ad) {
      xa = linear(x, N, L.inF, ad.r, ad.A, false); // [N, r]
      const up = linear(xa, N, ad.r, L.outF, ad.B, false);
      for (let i = 0; i < y.length; i++) y[i] += ad.scaling * up[i];
    }
    const back = (dy: Float64Array) => {
      const dx = linearBack(dy, N, L.inF, L.outF, w, fanInFanOut);
      if (ad && xa) {
        const g = grads.get(L.module) ?? {
          dA: new Float64Array(ad.A.length),
          dB: new Float64Array(ad.B.length),
        };
        grads.set(L.module, g);
        // dB[o, k] += s Σn dy[n,o] xa[n,k];  dxa = s dy B;  dA[k, i] += Σn dxa[n,k] x[n,i];  dx += dxa A
        for (let n = 0; n < N; n++)
          for (let oo = 0; oo < L.outF; oo++)
            for (let k = 0; k < ad.r; k++)
              g.dB[oo * ad.r + k] += ad.scaling * dy[n * L.outF + oo] * xa[n * ad.r + k];
        const dxa = linearBack(dy, N, ad.r, L.outF, ad.B, false);
        for (let i = 0; i < dxa.length; i++) dxa[i] *= ad.scaling;
        for (let n = 0; n < N; n++)
          for (let k = 0; k < ad.r; k++)
            for (let i = 0; i < L.inF; i++) g.dA[k * L.inF + i] += dxa[n * ad.r + k] * x[n * L.inF + i];
        addInPlace(dx, linearBack(dxa, N, L.inF, ad.r, ad.A, false));
      }
      return dx;
    };
    return { y, back };
  };

  /** HF rotate_half RoPE on [N, heads·D]; backward is the rotation by the negative angle. */
  const rope = (x: Float64Array, heads: number, sign: 1 | -1) => {
    if (!inv) return x;
    const y = new Float64Array(x.length);
    const half = D / 2;
    for (let n = 0; n < N; n++) {
      for (let h = 0; h < heads; h++) {
        const base = n * heads * D + h * D;
        for (let i = 0; i < half; i++) {
          const ang = pos(n) * inv[i];
          const c = Math.cos(ang);
          const s = sign * Math.sin(ang);
          const a = x[base + i];
          const b = x[base + i + half];
          y[base + i] = a * c - b * s;
          y[base + i + half] = b * c + a * s;
        }
      }
    }
    return y;
  };

  const attention = (q: Float64Array, k: Float64Array, v: Float64Array) => {
    const out = new Float64Array(N * H * D);
    const P: Float64Array[] = []; // probabilities per (row, head, query)
    const scale = 1 / Math.sqrt(D);
    const group = H / Hkv;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const hk = Math.floor(h / group);
        for (let t = 0; t < T; t++) {
          const nq = b * T + t;
          const p = new Float64Array(T);
          let mx = -Infinity;
          for (let s = 0; s <= t; s++) {
            const nk = b * T + s;
            if (seg(nk) !== seg(nq)) continue;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[nq * H * D + h * D + d] * k[nk * Hkv * D + hk * D + d];
            p[s] = dot * scale;
            mx = Math.max(mx, p[s]);
          }
          let z = 0;
          for (let s = 0; s <= t; s++) {
            const ok = seg(b * T + s) === seg(nq);
            p[s] = ok ? Math.exp(p[s] - mx) : 0;
            z += p[s];
          }
          for (let s = 0; s <= t; s++) p[s] /= z;
          P[(b * H + h) * T + t] = p;
          for (let s = 0; s <= t; s++)
            for (let d = 0; d < D; d++)
              out[nq * H * D + h * D + d] += p[s] * v[(b * T + s) * Hkv * D + hk * D + d];
        }
      }
    }
    const back = (dout: Float64Array) => {
      const dq = new Float64Array(q.length);
      const dk = new Float64Array(k.length);
      const dv = new Float64Array(v.length);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          const hk = Math.floor(h / group);
          for (let t = 0; t < T; t++) {
            const nq = b * T + t;
            const p = P[(b * H + h) * T + t];
            const dp = new Float64Array(T);
            let dsum = 0;
            for (let s = 0; s <= t; s++) {
              let g = 0;
              for (let d = 0; d < D; d++) {
                g += dout[nq * H * D + h * D + d] * v[(b * T + s) * Hkv * D + hk * D + d];
                dv[(b * T + s) * Hkv * D + hk * D + d] += p[s] * dout[nq * H * D + h * D + d];
              }
              dp[s] = g;
              dsum += p[s] * g;
            }
            for (let s = 0; s <= t; s++) {
              const ds = (p[s] * (dp[s] - dsum)) / Math.sqrt(D);
              if (ds === 0) continue;
              for (let d = 0; d < D; d++) {
                dq[nq * H * D + h * D + d] += ds * k[(b * T + s) * Hkv * D + hk * D + d];
                dk[(b * T + s) * Hkv * D + hk * D + d] += ds * q[nq * H * D + h * D + d];
              }
            }
          }
        }
      }
      return { dq, dk, dv };
    };
    return { out, back };
  };

  // -- forward ----------------------------------------------------------------------------------
  const emb = get(nm.embed);
  let x: Float64Array = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const id = batch.inputIds[n];
    for (let c = 0; c < C; c++) x[n * C + c] = emb[id * C + c];
    if (nm.pos) {
      const wpe = get(nm.pos);
      for (let c = 0; c < C; c++) x[n * C + c] += wpe[pos(n) * C + c];
    }
  }
  const backs: ((dy: Float64Array) => Float64Array)[] = [];
  for (let l = 0; l < spec.numLayers; l++) {
    const L = nm.layer(l);
    const n1 = norm(x, get(L.ln1), L.ln1b ? get(L.ln1b) : undefined);
    let q: Float64Array, k: Float64Array, v: Float64Array;
    let qkvBack: (dq: Float64Array, dk: Float64Array, dv: Float64Array) => Float64Array;
    if (gpt2) {
      const qkv = lin(n1.y, L.lin.qkv);
      q = new Float64Array(N * C);
      k = new Float64Array(N * C);
      v = new Float64Array(N * C);
      for (let n = 0; n < N; n++)
        for (let c = 0; c < C; c++) {
          q[n * C + c] = qkv.y[n * 3 * C + c];
          k[n * C + c] = qkv.y[n * 3 * C + C + c];
          v[n * C + c] = qkv.y[n * 3 * C + 2 * C + c];
        }
      qkvBack = (dq, dk, dv) => {
        const d = new Float64Array(N * 3 * C);
        for (let n = 0; n < N; n++)
          for (let c = 0; c < C; c++) {
            d[n * 3 * C + c] = dq[n * C + c];
            d[n * 3 * C + C + c] = dk[n * C + c];
            d[n * 3 * C + 2 * C + c] = dv[n * C + c];
          }
        return qkv.back(d);
      };
    } else {
      const lq = lin(n1.y, L.lin.q);
      const lk = lin(n1.y, L.lin.k);
      const lv = lin(n1.y, L.lin.v);
      q = rope(lq.y, H, 1);
      k = rope(lk.y, Hkv, 1);
      v = lv.y;
      qkvBack = (dq, dk, dv) =>
        addInPlace(addInPlace(lq.back(rope(dq, H, -1)), lk.back(rope(dk, Hkv, -1))), lv.back(dv));
    }
    const at = attention(q, k, v);
    const lo = lin(at.out, L.lin.o);
    const x2 = addInPlace(Float64Array.from(x), lo.y);
    const n2 = norm(x2, get(L.ln2), L.ln2b ? get(L.ln2b) : undefined);
    let mlpOut: Float64Array;
    let mlpBack: (d: Float64Array) => Float64Array;
    if (gpt2) {
      const fc = lin(n2.y, L.lin.fc);
      const a = Math.sqrt(2 / Math.PI);
      const act = fc.y.map((u) => 0.5 * u * (1 + Math.tanh(a * (u + 0.044715 * u ** 3))));
      const dn = lin(act, L.lin.down);
      mlpOut = dn.y;
      mlpBack = (d) => {
        const dact = dn.back(d);
        const du = dact.map((g, i) => {
          const u = fc.y[i];
          const th = Math.tanh(a * (u + 0.044715 * u ** 3));
          return g * (0.5 * (1 + th) + 0.5 * u * (1 - th * th) * a * (1 + 3 * 0.044715 * u * u));
        });
        return fc.back(du);
      };
    } else {
      const g = lin(n2.y, L.lin.gate);
      const u = lin(n2.y, L.lin.up);
      const sig = g.y.map((z) => 1 / (1 + Math.exp(-z)));
      const m = g.y.map((z, i) => z * sig[i] * u.y[i]);
      const dn = lin(m, L.lin.down);
      mlpOut = dn.y;
      mlpBack = (d) => {
        const dm = dn.back(d);
        const dg = dm.map((gm, i) => gm * u.y[i] * sig[i] * (1 + g.y[i] * (1 - sig[i])));
        const du = dm.map((gm, i) => gm * g.y[i] * sig[i]);
        return addInPlace(g.back(dg), u.back(du));
      };
    }
    const xIn = x;
    void xIn;
    x = addInPlace(Float64Array.from(x2), mlpOut);
    backs.push((dy) => {
      const dx2 = addInPlace(Float64Array.from(dy), n2.back(mlpBack(dy)));
      const { dq, dk, dv } = at.back(lo.back(dx2));
      return addInPlace(dx2, n1.back(qkvBack(dq, dk, dv)));
    });
  }
  const nf = norm(x, get(nm.finalNorm), nm.finalNormBias ? get(nm.finalNormBias) : undefined);
  const head = get(nm.head);
  const logits = linear(nf.y, N, C, V, head, false);

  // -- loss: logits at t score labels[t+1] within the same row and segment ---------------------
  let lossSum = 0;
  let tokens = 0;
  const dlogits = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const t = n % T;
    if (t === T - 1) continue;
    const target = batch.labels[n + 1];
    if (target === -100 || seg(n + 1) !== seg(n)) continue;
    const row = logits.subarray(n * V, (n + 1) * V);
    let mx = -Infinity;
    for (const z of row) mx = Math.max(mx, z);
    let zsum = 0;
    for (const z of row) zsum += Math.exp(z - mx);
    const lse = mx + Math.log(zsum);
    lossSum += lse - row[target];
    tokens++;
    for (let j = 0; j < V; j++) dlogits[n * V + j] = Math.exp(row[j] - lse);
    dlogits[n * V + target] -= 1;
  }
  if (o.wantGrads !== false && lora.size > 0) {
    // Gradients of the MEAN loss over trained tokens, as eval --save-grads defines them.
    for (let i = 0; i < dlogits.length; i++) dlogits[i] /= Math.max(tokens, 1);
    let d: Float64Array = nf.back(linearBack(dlogits, N, C, V, head, false));
    for (let l = spec.numLayers - 1; l >= 0; l--) d = backs[l](d);
  }
  return { lossSum, tokens, logits, grads };
}
