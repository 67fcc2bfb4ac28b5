// Causal self-attention backward (FlashAttention-2): probabilities recomputed from the saved log-sum-exp, no T×T buffer.
//
// Prelude constants as in attention.wgsl: BT (tile), HD (head dim D), DPT (= ceil(D/BT)). Binding table:
//   @binding(0) uniform AttnParams { B, T, H, Hkv, scale, stride }
//   @binding(1) read    dout: array<f32>  [N, H*D]      dL/dO
//   @binding(2) read    q: array<f32>     [N, H*D]      (attn_bwd_delta binds O here)
//   @binding(3) read    k: array<f32>     [N, Hkv*D]    (attn_bwd_delta binds lse [B*H*T] here)
//   @binding(4) rw      stats: array<f32> [B*H*T, 2]    (lse_i, D_i = rowsum(dO_i ⊙ O_i)), written by attn_bwd_delta
//   @binding(5) read    v: array<f32>     [N, Hkv*D]
//   @binding(6) read    seg: array<i32>   [N]           read only when SEGMENTS
//   @binding(7) rw      g1: array<f32>    dq [N, H*D] (attn_bwd_dq) or dk [N, Hkv*D] (attn_bwd_dkdv)
//   @binding(8) rw      g2: array<f32>    dv [N, Hkv*D] (attn_bwd_dkdv)
// One module cannot declare two variables at one binding, so the three entry points share this table; delta's
// O and lse take the q and k slots (same types). The layout stays within 8 storage buffers per stage.
//
//   attn_bwd_delta  bindings 0..4; 256 per workgroup, one invocation per (b, h, t); grid 2-D (x stride P.stride).
//   attn_bwd_dq     bindings 0..7; workgroup (BT lanes = keys, BT rows = queries); grid (ceil(T/BT), H, B).
//                   dq_i = scale · Σ_j ds_ij k_j,  ds_ij = p_ij (dO_i·v_j − D_i),  p_ij = exp(scale q_i·k_j − lse_i).
//   attn_bwd_dkdv   bindings 0..8; workgroup (BT lanes = queries, BT rows = keys); grid (ceil(T/BT), Hkv, B).
//                   dv_j = Σ_h Σ_i p_ij dO_i,  dk_j = scale · Σ_h Σ_i ds_ij q_i, h over the H/Hkv query heads of the
//                   kv head. The group is looped inside the kernel, so each dk/dv element is written once by one
//                   workgroup in a fixed order: deterministic, without float atomics.
//   attn_bwd_dq_rows, attn_bwd_dkdv_rows   the same bindings and results for D ≤ 32 (the host picks by head dim):
//                   one invocation per query (dq) or per key (dk, dv) with its rows in registers, 64 per
//                   workgroup; grids (ceil(T/64), H, B) and (ceil(T/64), Hkv, B). Query t walks keys 0 ..= t;
//                   all keys of a workgroup walk the same queries from its first key on, masking t < s. Either way
//                   the active invocations load the same row at each step (a broadcast from cache): no workgroup
//                   memory, no barrier.
// dq and dk/dv are separate kernels (FA2 fuses dq with float atomics): the score recomputation is paid twice to
// stay deterministic and portable. Workgroup memory: (4·BT·D + 2·BT² + 4·BT)·4 bytes.

// AttnParams and SEGMENTS come from attention_common.wgsl.

@group(0) @binding(0) var<uniform> P: AttnParams;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read> v: array<f32>;
@group(0) @binding(6) var<storage, read> seg: array<i32>;
@group(0) @binding(7) var<storage, read_write> g1: array<f32>;
@group(0) @binding(8) var<storage, read_write> g2: array<f32>;

var<workgroup> qs: array<f32, BT * HD>; // [query][D]
var<workgroup> dos: array<f32, BT * HD>; // [query][D]
var<workgroup> ks: array<f32, BT * HD>; // [key][D]
var<workgroup> vs: array<f32, BT * HD>; // [key][D]
var<workgroup> ps: array<f32, BT * BT>;
var<workgroup> dss: array<f32, BT * BT>;
var<workgroup> seg_q: array<i32, BT>;
var<workgroup> seg_k: array<i32, BT>;
var<workgroup> lse_q: array<f32, BT>;
var<workgroup> del_q: array<f32, BT>;

@compute @workgroup_size(256)
fn attn_bwd_delta(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = (wid.y * P.stride + wid.x) * 256u + lid.x;
  if (i >= P.B * P.H * P.T) { return; }
  let t = i % P.T;
  let h = (i / P.T) % P.H;
  let b = i / (P.T * P.H);
  let base = (b * P.T + t) * P.H * HD + h * HD;
  var acc = 0.0;
  for (var d = 0u; d < HD; d++) { acc = fma(dout[base + d], q[base + d], acc); }
  stats[2u * i] = k[i];
  stats[2u * i + 1u] = acc;
}

/** Stages BT rows of a [N, heads*D] tensor's head `head` (zeros past T) into one of the tiles. */
fn stage_q_tile(b: u32, h: u32, t0: u32, tid: u32) {
  let row = P.H * HD;
  for (var e = tid; e < BT * HD; e += BT * BT) {
    let t = t0 + e / HD;
    var qv = 0.0;
    var dv = 0.0;
    if (t < P.T) {
      let idx = (b * P.T + t) * row + h * HD + e % HD;
      qv = q[idx];
      dv = dout[idx];
    }
    qs[e] = qv;
    dos[e] = dv;
  }
  if (tid < BT) {
    let t = t0 + tid;
    var sg = -1;
    var ls = 0.0;
    var dl = 0.0;
    if (t < P.T) {
      if (SEGMENTS) { sg = seg[b * P.T + t]; }
      let si = (b * P.H + h) * P.T + t;
      ls = stats[2u * si];
      dl = stats[2u * si + 1u];
    }
    seg_q[tid] = sg;
    lse_q[tid] = ls;
    del_q[tid] = dl;
  }
}

fn stage_kv_tile(b: u32, hk: u32, s0: u32, tid: u32) {
  let row = P.Hkv * HD;
  for (var e = tid; e < BT * HD; e += BT * BT) {
    let s = s0 + e / HD;
    var kv = 0.0;
    var vv = 0.0;
    if (s < P.T) {
      let idx = (b * P.T + s) * row + hk * HD + e % HD;
      kv = k[idx];
      vv = v[idx];
    }
    ks[e] = kv;
    vs[e] = vv;
  }
  if (SEGMENTS && tid < BT) {
    var sg = -2;
    if (s0 + tid < P.T) { sg = seg[b * P.T + s0 + tid]; }
    seg_k[tid] = sg;
  }
}

/** p_ij and ds_ij of query i and key j of the staged tiles (0 where masked). */
fn prob_and_ds(i: u32, j: u32, t: u32, s: u32) -> vec2<f32> {
  var ok = s <= t && t < P.T;
  if (SEGMENTS) { ok = ok && seg_q[i] == seg_k[j]; }
  if (!ok) { return vec2<f32>(0.0, 0.0); }
  var sc = 0.0;
  var dp = 0.0;
  for (var d = 0u; d < HD; d++) {
    sc = fma(qs[i * HD + d], ks[j * HD + d], sc);
    dp = fma(dos[i * HD + d], vs[j * HD + d], dp);
  }
  // sc·scale ≤ lse_i, so p ≤ 1: no overflow whatever the logits.
  let p = exp(sc * P.scale - lse_q[i]);
  return vec2<f32>(p, p * (dp - del_q[i]));
}

@compute @workgroup_size(BT, BT)
fn attn_bwd_dq(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lane = lid.x;
  let qi = lid.y;
  let tid = qi * BT + lane;
  let b = wid.z;
  let h = wid.y;
  let q0 = wid.x * BT;
  let hk = h / (P.H / P.Hkv);
  stage_q_tile(b, h, q0, tid);
  let t = q0 + qi;
  var acc: array<f32, DPT>;
  for (var e = 0u; e < DPT; e++) { acc[e] = 0.0; }
  let kend = min(P.T, q0 + BT);
  for (var k0 = 0u; k0 < kend; k0 += BT) {
    workgroupBarrier();
    stage_kv_tile(b, hk, k0, tid);
    workgroupBarrier();
    dss[tid] = prob_and_ds(qi, lane, t, k0 + lane).y;
    workgroupBarrier();
    for (var e = 0u; e < DPT; e++) {
      let d = lane + BT * e;
      if (d < HD) {
        var a = acc[e];
        for (var j = 0u; j < BT; j++) { a = fma(dss[qi * BT + j], ks[j * HD + d], a); }
        acc[e] = a;
      }
    }
  }
  if (t < P.T) {
    for (var e = 0u; e < DPT; e++) {
      let d = lane + BT * e;
      if (d < HD) { g1[(b * P.T + t) * P.H * HD + h * HD + d] = P.scale * acc[e]; }
    }
  }
}

@compute @workgroup_size(BT, BT)
fn attn_bwd_dkdv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lane = lid.x;
  let kj = lid.y;
  let tid = kj * BT + lane;
  let b = wid.z;
  let hk = wid.y;
  let k0 = wid.x * BT;
  let group = P.H / P.Hkv;
  stage_kv_tile(b, hk, k0, tid);
  let s = k0 + kj;
  var dk: array<f32, DPT>;
  var dv: array<f32, DPT>;
  for (var e = 0u; e < DPT; e++) {
    dk[e] = 0.0;
    dv[e] = 0.0;
  }
  for (var g = 0u; g < group; g++) {
    let h = hk * group + g;
    // Causal: queries before the key tile never attend it.
    for (var q0 = k0; q0 < P.T; q0 += BT) {
      workgroupBarrier();
      stage_q_tile(b, h, q0, tid);
      workgroupBarrier();
      let pd = prob_and_ds(lane, kj, q0 + lane, s);
      ps[tid] = pd.x;
      dss[tid] = pd.y;
      workgroupBarrier();
      for (var e = 0u; e < DPT; e++) {
        let d = lane + BT * e;
        if (d < HD) {
          var a = dv[e];
          var c = dk[e];
          for (var i = 0u; i < BT; i++) {
            a = fma(ps[kj * BT + i], dos[i * HD + d], a);
            c = fma(dss[kj * BT + i], qs[i * HD + d], c);
          }
          dv[e] = a;
          dk[e] = c;
        }
      }
    }
  }
  if (s < P.T) {
    for (var e = 0u; e < DPT; e++) {
      let d = lane + BT * e;
      if (d < HD) {
        let idx = (b * P.T + s) * P.Hkv * HD + hk * HD + d;
        g1[idx] = P.scale * dk[e];
        g2[idx] = dv[e];
      }
    }
  }
}

const RPW: u32 = 64u;

@compute @workgroup_size(RPW)
fn attn_bwd_dq_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let h = wid.y;
  let t0 = wid.x * RPW;
  let t = t0 + lid.x;
  // Queries past T compute with row T − 1 (in bounds) and store nothing.
  let tq = min(t, P.T - 1u);
  let hk = h / (P.H / P.Hkv);
  let krow = P.Hkv * HD;
  let qb = (b * P.T + tq) * P.H * HD + h * HD;
  var qv: array<f32, HD>;
  var dov: array<f32, HD>;
  var acc: array<f32, HD>;
  for (var d = 0u; d < HD; d++) {
    qv[d] = q[qb + d];
    dov[d] = dout[qb + d];
    acc[d] = 0.0;
  }
  let si = (b * P.H + h) * P.T + tq;
  let ls = stats[2u * si];
  let dl = stats[2u * si + 1u];
  var sq = 0;
  if (SEGMENTS) { sq = seg[b * P.T + tq]; }
  // Causal: keys 0 ..= t. Neighbouring invocations end one key apart, so their loads stay in step.
  let send = select(0u, tq + 1u, t < P.T);
  for (var s = 0u; s < send; s++) {
    var ok = true;
    if (SEGMENTS) { ok = ok && seg[b * P.T + s] == sq; }
    if (ok) {
      let kb = (b * P.T + s) * krow + hk * HD;
      var sc = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < HD; d++) {
        sc = fma(qv[d], k[kb + d], sc);
        dp = fma(dov[d], v[kb + d], dp);
      }
      // sc·scale ≤ lse_i, so p ≤ 1: no overflow whatever the logits.
      let p = exp(sc * P.scale - ls);
      let ds = p * (dp - dl);
      for (var d = 0u; d < HD; d++) { acc[d] = fma(ds, k[kb + d], acc[d]); }
    }
  }
  if (t < P.T) {
    for (var d = 0u; d < HD; d++) { g1[qb + d] = P.scale * acc[d]; }
  }
}

@compute @workgroup_size(RPW)
fn attn_bwd_dkdv_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let hk = wid.y;
  let s0 = wid.x * RPW;
  let s = s0 + lid.x;
  let group = P.H / P.Hkv;
  // Keys past T compute with row T − 1 (in bounds) and store nothing.
  let sk = min(s, P.T - 1u);
  let kb = (b * P.T + sk) * P.Hkv * HD + hk * HD;
  var kv: array<f32, HD>;
  var vv: array<f32, HD>;
  var dk: array<f32, HD>;
  var dv: array<f32, HD>;
  for (var d = 0u; d < HD; d++) {
    kv[d] = k[kb + d];
    vv[d] = v[kb + d];
    dk[d] = 0.0;
    dv[d] = 0.0;
  }
  var sg = 0;
  if (SEGMENTS) { sg = seg[b * P.T + sk]; }
  for (var g = 0u; g < group; g++) {
    let h = hk * group + g;
    // Causal: queries before the workgroup's first key never attend it.
    for (var t = s0; t < P.T; t++) {
      var ok = t >= sk;
      if (SEGMENTS) { ok = ok && seg[b * P.T + t] == sg; }
      if (ok) {
        let qb = (b * P.T + t) * P.H * HD + h * HD;
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HD; d++) {
          sc = fma(q[qb + d], kv[d], sc);
          dp = fma(dout[qb + d], vv[d], dp);
        }
        let si = (b * P.H + h) * P.T + t;
        let p = exp(sc * P.scale - stats[2u * si]);
        let ds = p * (dp - stats[2u * si + 1u]);
        for (var d = 0u; d < HD; d++) {
          dv[d] = fma(p, dout[qb + d], dv[d]);
          dk[d] = fma(ds, q[qb + d], dk[d]);
        }
      }
    }
  }
  if (s < P.T) {
    for (var d = 0u; d < HD; d++) {
      g1[kb + d] = P.scale * dk[d];
      g2[kb + d] = dv[d];
    }
  }
}
