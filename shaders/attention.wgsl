// Causal self-attention forward with GQA and packed segments, tile by tile with an online softmax (FlashAttention-2).
//
// Two entry points; the host picks by head dim (src/ops/attention.ts):
//   attn_fwd_rows  D ≤ 32: one invocation per query, its q and output row in registers, QPW = 64 queries of one
//                  head per workgroup; grid (ceil(T/64), H, B). Query t walks keys 0 ..= t in order, so at each
//                  step the active invocations load the same k/v row (a broadcast from cache) and nothing is
//                  staged: no workgroup memory, no barrier. The online softmax rescales only when a score beats
//                  the running max.
//   attn_fwd       larger D, where a row per invocation would not fit registers: tiles staged in workgroup memory,
//                  as described below.
// Entry point `attn_fwd`, workgroup (BT lanes, BT query rows); grid (ceil(T/BT), H, B): one workgroup per tile of
// BT queries of one head of one batch row. The prelude defines `const BT: u32` (tile size), `const HD: u32` (head
// dim D) and `const DPT: u32` (= ceil(D/BT), output dims per invocation).
//   @binding(0) uniform AttnParams { B, T, H, Hkv, scale, stride }
//   @binding(1) read    q: array<f32>    [N, H*D]     N = B*T rows, head h at columns h*D .. h*D+D
//   @binding(2) read    k: array<f32>    [N, Hkv*D]
//   @binding(3) read    v: array<f32>    [N, Hkv*D]
//   @binding(4) read    seg: array<i32>  [N]          segment ids, read only when SEGMENTS
//   @binding(5) rw      o: array<f32>    [N, H*D]
//   @binding(6) rw      lse: array<f32>  [B*H*T]      log-sum-exp of each query's scores, index (b*H + h)*T + t
// Query t of head h attends key s of kv head h / (H/Hkv) when s ≤ t (and seg[s] == seg[t] with SEGMENTS).
//
// Per key tile: invocation (lane j, row i) computes one score s_ij from the staged Q and K tiles; each row takes
// its tile max, rescales its running sum and output by exp(m_old − m_new), and adds P·V for its DPT dims.
// Memory is O(T·D): no T×T buffer. Key tiles past the query tile are skipped (causal). Masked scores never enter
// exp(), and the running max starts at a finite NEG so that an all-masked tile gives exp(0)·0 instead of NaN.
// Workgroup memory: (3·BT·D + 2·BT² + 2·BT)·4 bytes; the host picks BT so that it fits the device's limit.

// AttnParams and SEGMENTS come from attention_common.wgsl.

@group(0) @binding(0) var<uniform> P: AttnParams;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> seg: array<i32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

const NEG: f32 = -3.0e38;

var<workgroup> qs: array<f32, BT * HD>; // [BT queries][D], pre-scaled
var<workgroup> ks: array<f32, BT * HD>; // [BT keys][D]
var<workgroup> vs: array<f32, BT * HD>; // [BT keys][D]
var<workgroup> ss: array<f32, BT * BT>; // scores [query][key]
var<workgroup> ps: array<f32, BT * BT>; // probabilities (unnormalised) [query][key]
var<workgroup> seg_q: array<i32, BT>;
var<workgroup> seg_k: array<i32, BT>;

@compute @workgroup_size(BT, BT)
fn attn_fwd(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lane = lid.x;
  let qi = lid.y;
  let tid = qi * BT + lane;
  let b = wid.z;
  let h = wid.y;
  let q0 = wid.x * BT;
  let hk = h / (P.H / P.Hkv);
  let qrow = P.H * HD;
  let krow = P.Hkv * HD;

  for (var e = tid; e < BT * HD; e += BT * BT) {
    let t = q0 + e / HD;
    var val = 0.0;
    if (t < P.T) { val = q[(b * P.T + t) * qrow + h * HD + e % HD] * P.scale; }
    qs[e] = val;
  }
  if (SEGMENTS && tid < BT) {
    var sg = -1;
    if (q0 + tid < P.T) { sg = seg[b * P.T + q0 + tid]; }
    seg_q[tid] = sg;
  }

  let t = q0 + qi;
  var m = NEG;
  var l = 0.0;
  var acc: array<f32, DPT>;
  for (var e = 0u; e < DPT; e++) { acc[e] = 0.0; }
  let kend = min(P.T, q0 + BT);
  for (var k0 = 0u; k0 < kend; k0 += BT) {
    // The previous tile's readers are done before its K, V and P are overwritten.
    workgroupBarrier();
    for (var e = tid; e < BT * HD; e += BT * BT) {
      let s = k0 + e / HD;
      var kv = 0.0;
      var vv = 0.0;
      if (s < P.T) {
        let idx = (b * P.T + s) * krow + hk * HD + e % HD;
        kv = k[idx];
        vv = v[idx];
      }
      ks[e] = kv;
      vs[e] = vv;
    }
    if (SEGMENTS && tid < BT) {
      var sg = -2;
      if (k0 + tid < P.T) { sg = seg[b * P.T + k0 + tid]; }
      seg_k[tid] = sg;
    }
    workgroupBarrier();

    let s = k0 + lane;
    var ok = s <= t && t < P.T;
    if (SEGMENTS) { ok = ok && seg_q[qi] == seg_k[lane]; }
    var sc = NEG;
    if (ok) {
      var dot = 0.0;
      for (var d = 0u; d < HD; d++) { dot = fma(qs[qi * HD + d], ks[lane * HD + d], dot); }
      sc = dot;
    }
    ss[tid] = sc;
    workgroupBarrier();

    var mt = NEG;
    for (var j = 0u; j < BT; j++) { mt = max(mt, ss[qi * BT + j]); }
    let m_new = max(m, mt);
    var p = 0.0;
    if (ok) { p = exp(sc - m_new); }
    ps[tid] = p;
    workgroupBarrier();

    var rs = 0.0;
    for (var j = 0u; j < BT; j++) { rs += ps[qi * BT + j]; }
    let alpha = exp(m - m_new);
    l = l * alpha + rs;
    m = m_new;
    for (var e = 0u; e < DPT; e++) {
      let d = lane + BT * e;
      if (d < HD) {
        var a = acc[e] * alpha;
        for (var j = 0u; j < BT; j++) { a = fma(ps[qi * BT + j], vs[j * HD + d], a); }
        acc[e] = a;
      }
    }
  }

  if (t < P.T) {
    // Every query attends at least itself, so l ≥ 1 here.
    let inv = 1.0 / l;
    for (var e = 0u; e < DPT; e++) {
      let d = lane + BT * e;
      if (d < HD) { o[(b * P.T + t) * qrow + h * HD + d] = acc[e] * inv; }
    }
    if (lane == 0u) { lse[(b * P.H + h) * P.T + t] = m + log(l); }
  }
}

const QPW: u32 = 64u;

@compute @workgroup_size(QPW)
fn attn_fwd_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let h = wid.y;
  let t0 = wid.x * QPW;
  let t = t0 + lid.x;
  // Queries past T compute with row T − 1 (in bounds) and store nothing.
  let tq = min(t, P.T - 1u);
  let hk = h / (P.H / P.Hkv);
  let qrow = P.H * HD;
  let krow = P.Hkv * HD;
  let qb = (b * P.T + tq) * qrow + h * HD;
  var qv: array<f32, HD>;
  var acc: array<f32, HD>;
  for (var d = 0u; d < HD; d++) {
    qv[d] = q[qb + d] * P.scale;
    acc[d] = 0.0;
  }
  var sq = 0;
  if (SEGMENTS) { sq = seg[b * P.T + tq]; }
  var m = NEG;
  var l = 0.0;
  // Causal: keys 0 ..= t. Neighbouring invocations end one key apart, so their loads stay in step.
  let send = select(0u, tq + 1u, t < P.T);
  for (var s = 0u; s < send; s++) {
    var ok = true;
    if (SEGMENTS) { ok = ok && seg[b * P.T + s] == sq; }
    if (ok) {
      let kb = (b * P.T + s) * krow + hk * HD;
      var sc = 0.0;
      for (var d = 0u; d < HD; d++) { sc = fma(qv[d], k[kb + d], sc); }
      if (sc > m) {
        let alpha = exp(m - sc);
        l *= alpha;
        for (var d = 0u; d < HD; d++) { acc[d] *= alpha; }
        m = sc;
      }
      let p = exp(sc - m);
      l += p;
      for (var d = 0u; d < HD; d++) { acc[d] = fma(p, v[kb + d], acc[d]); }
    }
  }
  if (t < P.T) {
    // Every query attends at least itself, so l ≥ 1 here.
    let inv = 1.0 / l;
    for (var d = 0u; d < HD; d++) { o[qb + d] = acc[d] * inv; }
    lse[(b * P.H + h) * P.T + t] = m + log(l);
  }
}
