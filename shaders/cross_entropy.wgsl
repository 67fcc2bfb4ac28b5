// Cross-entropy over vocabulary logits, one chunk of rows at a time, and the deterministic sum of the row losses.
//
// ce_rows: LPR lanes per chunk row, WG / LPR rows per workgroup; the prelude defines `const LPR: u32` (a power of
//   two, 1..256, one lane per 64 logits: src/ops/cross-entropy.ts) and `const WG: u32` (= max(64, LPR)).
//   Group g = wid.x + wid.y · gx has rows g·WG/LPR + lid/LPR; rows >= R take part in the reduction, store nothing.
//   @binding(0) uniform P
//   @binding(1) rw   logits: array<f32>   [R, V]   overwritten with dlogits when P.want_grad != 0
//   @binding(2) read targets: array<i32>  [N]      target of global row row0 + r; outside [0, V) (−100) = ignored
//   @binding(3) rw   row_loss: array<f32> [N]      row0 + r gets lse − logit[target], or 0 when ignored
//   dlogits = (softmax − onehot(target)) · grad_scale, or 0 for ignored rows.
// loss_sum_add: a single workgroup of WG (its tree has log2 WG levels).
//   @binding(0) uniform P (P.R = N), @binding(1) rw loss_sum: array<f32> [1] (+= Σ row_loss),
//   @binding(2) read row_loss_in: array<f32> [N]
// Both reductions are fixed trees over workgroup memory: the same inputs give the same bits (no float atomics).

struct CeParams {
  R: u32,
  V: u32,
  row0: u32,
  want_grad: u32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> P: CeParams;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(1) var<storage, read_write> loss_sum: array<f32>;
@group(0) @binding(2) var<storage, read> row_loss_in: array<f32>;

// Running max before any element: finite, because WGSL may assume no infinities; far below any logit.
const NEG = -1e30;

var<workgroup> red: array<vec2<f32>, WG>;

// (max, Σ exp(l − max)) of the union of two sets.
fn combine(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(WG)
fn ce_rows(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let grp = wid.x + wid.y * nwg.x;
  if (grp * (WG / LPR) >= P.R) { return; }
  let lid = l.x;
  let lane = lid % LPR;
  let live = grp * (WG / LPR) + lid / LPR < P.R;
  let r = select(P.R - 1u, grp * (WG / LPR) + lid / LPR, live);
  let vend = select(0u, P.V, live);
  let base = r * P.V;
  let t = targets[P.row0 + r];
  let valid = t >= 0 && t < i32(P.V);
  // Read before the lanes of this row start overwriting logits with gradients (ordered by the barriers below).
  let target_logit = logits[base + select(0u, u32(t), valid)];
  // Online log-sum-exp: one pass over the row, stable for any logit magnitude.
  var acc = vec2(NEG, 0.0);
  for (var v = lane; v < vend; v += LPR) {
    let x = logits[base + v];
    if (x > acc.x) { acc = vec2(x, acc.y * exp(acc.x - x) + 1.0); } else { acc.y += exp(x - acc.x); }
  }
  if (LPR > 1u) {
    red[lid] = acc;
    workgroupBarrier();
    for (var s = LPR / 2u; s > 0u; s >>= 1u) {
      if (lane < s) { red[lid] = combine(red[lid], red[lid + s]); }
      workgroupBarrier();
    }
    acc = red[lid - lane];
  }
  let lse = acc.x + log(acc.y);
  if (lane == 0u && live) { row_loss[P.row0 + r] = select(0.0, lse - target_logit, valid); }
  if (P.want_grad == 0u) { return; }
  for (var v = lane; v < vend; v += LPR) {
    var d = 0.0;
    if (valid) { d = (exp(logits[base + v] - lse) - select(0.0, 1.0, i32(v) == t)) * P.grad_scale; }
    logits[base + v] = d;
  }
}

var<workgroup> red1: array<f32, WG>;

@compute @workgroup_size(WG)
fn loss_sum_add(@builtin(local_invocation_id) l: vec3<u32>) {
  let lid = l.x;
  var s = 0.0;
  for (var i = lid; i < P.R; i += WG) { s += row_loss_in[i]; }
  red1[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red1[lid] += red1[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { loss_sum[0] += red1[0]; }
}
