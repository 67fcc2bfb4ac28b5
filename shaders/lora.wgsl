// LoRA branch: the skinny matmuls of h = W x + s · B (A dropout(x)) and their gradients.
//
// Every kernel pairs a wide f32 matrix [N, C] (x, dy, y or dx; C = in or out, up to thousands) with a LoRA
// factor of rank r (1..64). A factor is A-shaped, stored [r, C], or B-shaped, stored [C, r] (W_IS_B); fidx(j, c)
// hides the difference so that one kernel serves A and B. All tensors f32, row-major.
// Needs dropout.wgsl (included first) and a prelude `const RT: u32 = ...;` (rank columns per workgroup, 1..8).
//
//   @binding(0) uniform LoraParams { rows = N, cols = C, r, alpha, dropout key, threshold, inv_keep }
//
//   lora_down  in1: read [N, C]   in2: read factor   outp: rw [N, r]
//     outp[n, j] = alpha · Σ_c drop(in1)[n, c] · F(j, c)
//     forward xa = drop(x)·Aᵀ (DROPOUT on x); backward dxa = s·dy·B (W_IS_B).
//     workgroup 16 lanes along C × 16 rows; grid (ceil(N/16), ceil(r/RT)). A row is read once per RT ranks, its
//     mask generated as it is read; the 16 lane partials are summed in workgroup memory (RT·1 KB).
//   lora_up    in1: read [N, r]   in2: read factor   outp: rw [N, C]
//     outp[n, c] (+)= alpha · keep(n, c)·inv_keep · Σ_j in1[n, j] · F(j, c)
//     forward y += s·xa·Bᵀ (W_IS_B, ACCUMULATE); backward dx += mask ⊙ (dxa·A) / (1 − p) (DROPOUT, ACCUMULATE).
//     workgroup 16 × 16, tile 16 rows × 64 columns, 4 columns per invocation; grid (ceil(C/64), ceil(N/16)).
//     The scale, mask and accumulation are the epilogue, so the frozen layer's y / dX is read and written once.
//   lora_grad  in1: read [N, C]   in2: read [N, r]   outp: rw factor-shaped gradient
//     G(j, c) += alpha · Σ_n drop(in1)[n, c] · in2[n, j]
//     gradA += γ·dxaᵀ·drop(x) (DROPOUT); gradB += γ·s·dyᵀ·xa (W_IS_B). Always accumulates (micro-batches).
//     workgroup 32 columns × 8 lanes along N; grid (ceil(C/32), ceil(r/RT)). Each gradient element is summed by
//     one workgroup in a fixed order: deterministic, no float atomics.
//
// Why not the general matmul: with r ≤ 64 a 64×64 tile wastes most of its work on the [N, r] and [r, C] shapes,
// and dropout must be applied while x is read. NOTE: lora_grad's parallelism is C/32 · r/RT workgroups, each
// walking all N rows; for C in the thousands that fills a GPU, for tiny C it does not (a split over N with a
// second, ordered reduction pass is the next step if profiles ask for it).

struct LoraParams {
  rows: u32,
  cols: u32,
  r: u32,
  alpha: f32,
  seed: u32,
  step: u32,
  module_id: u32,
  threshold: u32,
  inv_keep: f32,
}

override W_IS_B: bool = false;
override DROPOUT: bool = false;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> P: LoraParams;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> outp: array<f32>;

// Partial sums of lora_down ([RT][16 rows][16 lanes]) and lora_grad ([RT][8 lanes][32 columns]).
var<workgroup> red: array<f32, RT * 256u>;
var<workgroup> up_s: array<f32, 256>; // [16 rows][16 ranks]
var<workgroup> up_f: array<f32, 1024>; // [16 ranks][64 columns]

/** Index of factor element (rank j, wide column c). */
fn fidx(j: u32, c: u32) -> u32 {
  if (W_IS_B) {
    return c * P.r + j;
  }
  return j * P.cols + c;
}

fn keep_scale(n: u32, c: u32) -> f32 {
  return select(0.0, P.inv_keep, dropout_keep(P.seed, P.step, P.module_id, n * P.cols + c, P.threshold));
}

/** in1[n, c], with the dropout mask applied when DROPOUT. */
fn load_wide(n: u32, c: u32) -> f32 {
  let v = in1[n * P.cols + c];
  if (DROPOUT) {
    return v * keep_scale(n, c);
  }
  return v;
}

@compute @workgroup_size(16, 16)
fn lora_down(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lane = lid.x;
  let n = wid.x * 16u + lid.y;
  let j0 = wid.y * RT;
  var acc: array<f32, RT>;
  for (var j = 0u; j < RT; j++) { acc[j] = 0.0; }
  if (n < P.rows) {
    for (var c = lane; c < P.cols; c += 16u) {
      let xv = load_wide(n, c);
      for (var j = 0u; j < RT; j++) {
        if (j0 + j < P.r) { acc[j] = fma(xv, in2[fidx(j0 + j, c)], acc[j]); }
      }
    }
  }
  for (var j = 0u; j < RT; j++) { red[(j * 16u + lid.y) * 16u + lane] = acc[j]; }
  workgroupBarrier();
  if (lane < RT && n < P.rows && j0 + lane < P.r) {
    var s = 0.0;
    for (var l = 0u; l < 16u; l++) { s += red[(lane * 16u + lid.y) * 16u + l]; }
    outp[n * P.r + j0 + lane] = P.alpha * s;
  }
}

@compute @workgroup_size(16, 16)
fn lora_up(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tid = lid.y * 16u + lid.x;
  let n0 = wid.y * 16u;
  let c0 = wid.x * 64u;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var j0 = 0u; j0 < P.r; j0 += 16u) {
    let sn = n0 + tid / 16u;
    let sj = j0 + tid % 16u;
    var sv = 0.0;
    if (sn < P.rows && sj < P.r) { sv = in1[sn * P.r + sj]; }
    up_s[tid] = sv;
    for (var s = 0u; s < 4u; s++) {
      let e = tid + s * 256u;
      // Consecutive invocations read consecutive addresses of the factor, whichever its layout.
      var dj: u32;
      var dc: u32;
      if (W_IS_B) { dj = e % 16u; dc = e / 16u; } else { dj = e / 64u; dc = e % 64u; }
      var fv = 0.0;
      if (j0 + dj < P.r && c0 + dc < P.cols) { fv = in2[fidx(j0 + dj, c0 + dc)]; }
      up_f[dj * 64u + dc] = fv;
    }
    workgroupBarrier();
    for (var j = 0u; j < 16u; j++) {
      let a = up_s[lid.y * 16u + j];
      for (var i = 0u; i < 4u; i++) { acc[i] = fma(a, up_f[j * 64u + lid.x + 16u * i], acc[i]); }
    }
    workgroupBarrier();
  }
  let n = n0 + lid.y;
  if (n >= P.rows) { return; }
  for (var i = 0u; i < 4u; i++) {
    let c = c0 + lid.x + 16u * i;
    if (c < P.cols) {
      let idx = n * P.cols + c;
      var v = P.alpha * acc[i];
      if (DROPOUT) { v *= keep_scale(n, c); }
      if (ACCUMULATE) { v += outp[idx]; }
      outp[idx] = v;
    }
  }
}

@compute @workgroup_size(32, 8)
fn lora_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * 32u + lid.x;
  let j0 = wid.y * RT;
  var acc: array<f32, RT>;
  for (var j = 0u; j < RT; j++) { acc[j] = 0.0; }
  if (c < P.cols) {
    for (var n = lid.y; n < P.rows; n += 8u) {
      let xv = load_wide(n, c);
      for (var j = 0u; j < RT; j++) {
        if (j0 + j < P.r) { acc[j] = fma(xv, in2[n * P.r + j0 + j], acc[j]); }
      }
    }
  }
  for (var j = 0u; j < RT; j++) { red[(j * 8u + lid.y) * 32u + lid.x] = acc[j]; }
  workgroupBarrier();
  let tid = lid.y * 32u + lid.x;
  let jj = tid / 32u;
  let cl = tid % 32u;
  let cc = wid.x * 32u + cl;
  if (jj < RT && j0 + jj < P.r && cc < P.cols) {
    var s = 0.0;
    for (var l = 0u; l < 8u; l++) { s += red[(jj * 8u + l) * 32u + cl]; }
    let gi = fidx(j0 + jj, cc);
    outp[gi] = outp[gi] + P.alpha * s;
  }
}
