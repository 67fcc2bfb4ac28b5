// LoRA branch: the skinny matmuls of h = W x + s · B (A dropout(x)) and their gradients.
//
// Every kernel pairs a wide f32 matrix [N, C] (x, dy, y or dx; C = in or out, up to thousands) with a LoRA
// factor of rank r (1..64). A factor is A-shaped, stored [r, C], or B-shaped, stored [C, r] (W_IS_B); fidx(j, c)
// hides the difference so that one kernel serves A and B. All tensors f32, row-major.
// Needs dropout.wgsl (included first) and a prelude `const RT: u32 = ...;` (rank columns per invocation, 1..8)
// and `const LPR: u32 = ...;` (lanes per row of lora_down, a power of two 1..16). Workgroups are 64 invocations.
//
//   @binding(0) uniform LoraParams { rows = N, cols = C, r, alpha, dropout key, threshold, inv_keep, chunk }
//
//   lora_down  in1: read [N, C]   in2: read factor   outp: rw [N, r]
//     outp[n, j] = alpha · Σ_c drop(in1)[n, c] · F(j, c)
//     forward xa = drop(x)·Aᵀ (DROPOUT on x); backward dxa = s·dy·B (W_IS_B).
//     LPR lanes per row, 64 / LPR rows per workgroup; grid (gx, gy, ceil(r/RT)), row group wid.x + wid.y·gx.
//     Each lane keeps RT sums in registers while it walks its columns c ≡ lane (mod LPR), reading each element of
//     the row once per RT ranks with its mask generated as it is read; the LPR lane sums meet in a tree in
//     workgroup memory. LPR = 1 (C < 256) needs no workgroup memory and no barrier at all.
//   lora_up    in1: read [N, r]   in2: read factor   outp: rw [N, C]
//     outp[n, c] (+)= alpha · keep(n, c)·inv_keep · Σ_j in1[n, j] · F(j, c)
//     forward y += s·xa·Bᵀ (W_IS_B, ACCUMULATE); backward dx += mask ⊙ (dxa·A) / (1 − p) (DROPOUT, ACCUMULATE).
//     One invocation per column and UP_ROWS = 16 rows: each factor value F(j, c) is loaded once into a register
//     and used for 16 rows, whose in1 values are the same for the whole workgroup (broadcast loads). Grid
//     (ceil(C/64), ceil(N/16)); no workgroup memory, no barrier. The scale, mask and accumulation are the
//     epilogue, so the frozen layer's y / dX is read and written once, coalesced.
//   lora_grad  in1: read [N, C]   in2: read [N, r]   outp: rw (SPLIT: partials [S, r, C]; else the gradient)
//     G(j, c) += alpha · Σ_n drop(in1)[n, c] · in2[n, j]
//     gradA += γ·dxaᵀ·drop(x) (DROPOUT); gradB += γ·s·dyᵀ·xa (W_IS_B). Always accumulates (micro-batches).
//     Split-K over N: one invocation per column c, rank tile and chunk of P.chunk rows; grid
//     (ceil(C/64), S = ceil(N/chunk), ceil(r/RT)). With S = 1 it adds alpha·sum into the gradient directly;
//     with SPLIT it writes its partial sums and lora_grad_reduce adds them up.
//   lora_grad_reduce  in1: read partials [S, r, C] (S = P.rows)   outp: rw gradient
//     G(j, c) += alpha · Σ_s partial[s, j, c], s in order; one invocation per (j, c), grid (ceil(r·C/64)).
//     Each gradient element is summed in a fixed order: deterministic, no float atomics.
//
// Why not the general matmul: with r ≤ 64 a 64×64 tile wastes most of its work on the [N, r] and [r, C] shapes,
// and dropout must be applied while x is read.

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
  chunk: u32,
}

override W_IS_B: bool = false;
override DROPOUT: bool = false;
override ACCUMULATE: bool = false;
override SPLIT: bool = false;

@group(0) @binding(0) var<uniform> P: LoraParams;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> outp: array<f32>;

const WG: u32 = 64u;
const UP_ROWS: u32 = 16u;

// Lane partial sums of lora_down, [RT][WG]; untouched when LPR = 1.
var<workgroup> red: array<f32, RT * WG>;

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

@compute @workgroup_size(WG)
fn lora_down(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let lane = lid.x % LPR;
  let n = (wid.x + wid.y * nwg.x) * (WG / LPR) + lid.x / LPR;
  let j0 = wid.z * RT;
  let live = n < P.rows;
  let cend = select(0u, P.cols, live);
  var acc: array<f32, RT>;
  for (var j = 0u; j < RT; j++) { acc[j] = 0.0; }
  for (var c = lane; c < cend; c += LPR) {
    let xv = load_wide(n, c);
    for (var j = 0u; j < RT; j++) {
      if (j0 + j < P.r) { acc[j] = fma(xv, in2[fidx(j0 + j, c)], acc[j]); }
    }
  }
  if (LPR > 1u) {
    for (var j = 0u; j < RT; j++) { red[j * WG + lid.x] = acc[j]; }
    workgroupBarrier();
    for (var s = LPR / 2u; s > 0u; s >>= 1u) {
      if (lane < s) {
        for (var j = 0u; j < RT; j++) { red[j * WG + lid.x] += red[j * WG + lid.x + s]; }
      }
      workgroupBarrier();
    }
    for (var j = 0u; j < RT; j++) { acc[j] = red[j * WG + lid.x]; }
  }
  if (lane == 0u && live) {
    for (var j = 0u; j < RT; j++) {
      if (j0 + j < P.r) { outp[n * P.r + j0 + j] = P.alpha * acc[j]; }
    }
  }
}

@compute @workgroup_size(WG)
fn lora_up(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * WG + lid.x;
  let n0 = wid.y * UP_ROWS;
  if (c >= P.cols) { return; }
  var acc: array<f32, UP_ROWS>;
  for (var i = 0u; i < UP_ROWS; i++) { acc[i] = 0.0; }
  // Rows past N read row N − 1 (in bounds) and are not stored.
  let last = P.rows - 1u;
  for (var j = 0u; j < P.r; j++) {
    let f = in2[fidx(j, c)];
    for (var i = 0u; i < UP_ROWS; i++) { acc[i] = fma(in1[min(n0 + i, last) * P.r + j], f, acc[i]); }
  }
  for (var i = 0u; i < UP_ROWS; i++) {
    let n = n0 + i;
    if (n < P.rows) {
      let idx = n * P.cols + c;
      var v = P.alpha * acc[i];
      if (DROPOUT) { v *= keep_scale(n, c); }
      if (ACCUMULATE) { v += outp[idx]; }
      outp[idx] = v;
    }
  }
}

@compute @workgroup_size(WG)
fn lora_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * WG + lid.x;
  let split = wid.y;
  let j0 = wid.z * RT;
  if (c >= P.cols) { return; }
  var acc: array<f32, RT>;
  for (var j = 0u; j < RT; j++) { acc[j] = 0.0; }
  let nend = min(P.rows, (split + 1u) * P.chunk);
  for (var n = split * P.chunk; n < nend; n++) {
    let xv = load_wide(n, c);
    for (var j = 0u; j < RT; j++) {
      if (j0 + j < P.r) { acc[j] = fma(xv, in2[n * P.r + j0 + j], acc[j]); }
    }
  }
  for (var j = 0u; j < RT; j++) {
    if (j0 + j < P.r) {
      if (SPLIT) {
        outp[(split * P.r + j0 + j) * P.cols + c] = acc[j];
      } else {
        let gi = fidx(j0 + j, c);
        outp[gi] = outp[gi] + P.alpha * acc[j];
      }
    }
  }
}

@compute @workgroup_size(WG)
fn lora_grad_reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  if (e >= P.r * P.cols) { return; }
  let j = e / P.cols;
  let c = e % P.cols;
  var s = 0.0;
  for (var k = 0u; k < P.rows; k++) { s += in1[k * P.r * P.cols + e]; }
  let gi = fidx(j, c);
  outp[gi] = outp[gi] + P.alpha * s;
}
