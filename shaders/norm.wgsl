// Row normalisations, forward and backward: RMSNorm (HF Llama/Qwen2) and LayerNorm (GPT-2). Everything in f32.
//
// LPR lanes per row, RPW = WG / LPR rows per workgroup; the prelude defines `const LPR: u32` (a power of two,
// 1..256) and `const WG: u32` (= max(64, LPR)). Group g = wid.x + wid.y · gx handles rows g·RPW .. g·RPW + RPW − 1;
// lane l of a row reads columns l, l + LPR, ... (coalesced). The host picks LPR from C (src/ops/norm.ts): one lane
// per row for small C, where a row is a few cache lines and a reduction would cost more than it saves; up to 256
// cooperating lanes for wide rows. With LPR = 1 the reduction is the identity and the kernel has no barrier.
// The prelude declares the per-column vectors through src/ops/wgsl.ts (any float dtype, read as f32):
//   @binding(2) weight[C] -> load_weight(i), and @binding(6) bias[C] -> load_bias(i) (declared for every entry).
//   rms_forward:  0 P, 1 rw y[N,C], 2 weight, 3 read x[N,C], 4 rw rstd_out[N]
//   rms_backward: 0 P, 1 rw dx[N,C], 2 weight, 3 read x[N,C], 4 read rstd_in[N], 5 read dy[N,C]
//   ln_forward:   0 P, 1 rw y[N,C], 2 weight, 3 read x[N,C], 4 rw rstd_out[N], 5 rw mean_out[N], 6 bias
//   ln_backward:  0 P, 1 rw dx[N,C], 2 weight, 3 read x[N,C], 4 read rstd_in[N], 5 read dy[N,C], 6 read mean_in[N]
// RMSNorm:   r = 1/sqrt(mean(x²) + eps), y = w·(x·r);  dx = r·w·dy − x·r³/C · Σ(w·dy·x)
// LayerNorm: m = mean(x), r = 1/sqrt(mean((x−m)²) + eps), x̂ = (x−m)·r, y = w·x̂ + b;
//            g = w·dy, dx = r·(g − Σg/C − x̂·Σ(g·x̂)/C)
// Rows past N in the last group (RPW > 1) take part in the reductions with no columns and store nothing.
// Sums are per-lane sequential, then a tree over the LPR lanes in workgroup memory (log2 LPR barriers):
// deterministic for a given C.

struct NormParams {
  N: u32,
  C: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> P: NormParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read> mean_in: array<f32>;

const RPW: u32 = WG / LPR;
var<workgroup> red: array<vec4<f32>, WG>;

// Sums v over the LPR lanes of a row; every lane gets the total. Must be called in uniform control flow.
fn reduce4(lid: u32, v: vec4<f32>) -> vec4<f32> {
  if (LPR == 1u) { return v; }
  let lane = lid % LPR;
  red[lid] = v;
  workgroupBarrier();
  for (var s = LPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[lid - lane];
  // The next reduction overwrites red: everyone must have read the total first.
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn rms_forward(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let grp = wid.x + wid.y * nwg.x;
  if (grp * RPW >= P.N) { return; }
  let lid = l.x;
  let lane = lid % LPR;
  let live = grp * RPW + lid / LPR < P.N;
  let row = select(P.N - 1u, grp * RPW + lid / LPR, live);
  let cend = select(0u, P.C, live);
  let base = row * P.C;
  var ss = 0.0;
  for (var c = lane; c < cend; c += LPR) { let v = x[base + c]; ss = fma(v, v, ss); }
  let r = inverseSqrt(reduce4(lid, vec4(ss, 0.0, 0.0, 0.0)).x / f32(P.C) + P.eps);
  // HF order: normalise first, then scale by the weight.
  for (var c = lane; c < cend; c += LPR) { out[base + c] = load_weight(c) * (x[base + c] * r); }
  if (lane == 0u && live) { rstd_out[row] = r; }
}

@compute @workgroup_size(WG)
fn rms_backward(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let grp = wid.x + wid.y * nwg.x;
  if (grp * RPW >= P.N) { return; }
  let lid = l.x;
  let lane = lid % LPR;
  let live = grp * RPW + lid / LPR < P.N;
  let row = select(P.N - 1u, grp * RPW + lid / LPR, live);
  let cend = select(0u, P.C, live);
  let base = row * P.C;
  let r = rstd_in[row];
  var dot = 0.0;
  for (var c = lane; c < cend; c += LPR) { dot = fma(load_weight(c) * dy[base + c], x[base + c], dot); }
  let k = reduce4(lid, vec4(dot, 0.0, 0.0, 0.0)).x * r * r * r / f32(P.C);
  for (var c = lane; c < cend; c += LPR) {
    out[base + c] = r * load_weight(c) * dy[base + c] - k * x[base + c];
  }
}

@compute @workgroup_size(WG)
fn ln_forward(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let grp = wid.x + wid.y * nwg.x;
  if (grp * RPW >= P.N) { return; }
  let lid = l.x;
  let lane = lid % LPR;
  let live = grp * RPW + lid / LPR < P.N;
  let row = select(P.N - 1u, grp * RPW + lid / LPR, live);
  let cend = select(0u, P.C, live);
  let base = row * P.C;
  var s = 0.0;
  for (var c = lane; c < cend; c += LPR) { s += x[base + c]; }
  let m = reduce4(lid, vec4(s, 0.0, 0.0, 0.0)).x / f32(P.C);
  // NOTE: a second pass over the deviations d = x − m rather than E[x²] − m², which cancels for rows with a large
  // mean; its Σd/C corrects the rounding of m (the corrected two-pass algorithm) in the same reduction. The
  // correction is applied to x − m (exact by Sterbenz where it matters), not folded into an f32 mean first, which
  // would cost up to ulp(mean)·rstd in y.
  var sd = vec4(0.0);
  for (var c = lane; c < cend; c += LPR) { let d = x[base + c] - m; sd += vec4(d, d * d, 0.0, 0.0); }
  let dev = reduce4(lid, sd) / f32(P.C);
  let r = inverseSqrt(max(dev.y - dev.x * dev.x, 0.0) + P.eps);
  for (var c = lane; c < cend; c += LPR) {
    out[base + c] = fma(((x[base + c] - m) - dev.x) * r, load_weight(c), load_bias(c));
  }
  if (lane == 0u && live) { mean_out[row] = m + dev.x; rstd_out[row] = r; }
}

@compute @workgroup_size(WG)
fn ln_backward(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let grp = wid.x + wid.y * nwg.x;
  if (grp * RPW >= P.N) { return; }
  let lid = l.x;
  let lane = lid % LPR;
  let live = grp * RPW + lid / LPR < P.N;
  let row = select(P.N - 1u, grp * RPW + lid / LPR, live);
  let cend = select(0u, P.C, live);
  let base = row * P.C;
  let m = mean_in[row];
  let r = rstd_in[row];
  // The saved mean is rounded to f32: its residual Σ(x − m)/C is recomputed in the same reduction (see ln_forward).
  var acc = vec4(0.0);
  for (var c = lane; c < cend; c += LPR) {
    let g = load_weight(c) * dy[base + c];
    let d = x[base + c] - m;
    acc += vec4(g, g * d, d, 0.0);
  }
  let sums = reduce4(lid, acc) / f32(P.C);
  let mean_gx = (sums.y - sums.z * sums.x) * r; // Σ(g·x̂)/C
  for (var c = lane; c < cend; c += LPR) {
    let g = load_weight(c) * dy[base + c];
    let xhat = ((x[base + c] - m) - sums.z) * r;
    out[base + c] = r * (g - sums.x - xhat * mean_gx);
  }
}
