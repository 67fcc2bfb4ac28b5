// Deterministic sums for the global gradient norm and loss totals: a fixed tree order, no float atomics, so the
// same inputs give the same bits on every run (resume must reproduce an uninterrupted run exactly).
//
// Entry `sumsq_partials`, workgroup 256: sums of squares over chunks of CHUNK = 4096 consecutive elements.
//   @binding(0) uniform SumsqParams { n, out_offset, _pad, _pad }
//   @binding(1) read    x: array<f32>          [n]
//   @binding(2) rw      partials: array<f32>   workgroup w writes partials[out_offset + w]
//   Grid: (ceil(n / 4096)). Invocation i of a workgroup adds elements chunk + i + 256·k, k = 0..15, then the
//   workgroup adds its 256 values pairwise.
//
// Entry `sum_partials`, one workgroup of 256:
//   @binding(0) uniform SumParams { count, out_index, scale, accumulate }
//   @binding(1) read    parts: array<f32>      [count]
//   @binding(2) rw      out: array<f32>        out[out_index] = scale · Σ parts (+ the old out[out_index] when accumulate)
//   Grid: (1). Used to finish a norm (all partials of all gradients), and to move a loss total into a stats slot.

struct SumsqParams {
  n: u32,
  out_offset: u32,
}

struct SumParams {
  count: u32,
  out_index: u32,
  scale: f32,
  accumulate: u32,
}

const WG = 256u;
const PER_THREAD = 16u;
const CHUNK = 4096u; // WG * PER_THREAD

var<workgroup> scratch: array<f32, 256>;

@group(0) @binding(0) var<uniform> SQ: SumsqParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

fn tree_sum(lid: u32) {
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      scratch[lid] = scratch[lid] + scratch[lid + stride];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn sumsq_partials(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lid3.x;
  let base = wid.x * CHUNK;
  var acc = 0.0;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = base + lid + k * WG;
    if (i < SQ.n) {
      let v = x[i];
      acc = fma(v, v, acc);
    }
  }
  scratch[lid] = acc;
  workgroupBarrier();
  tree_sum(lid);
  if (lid == 0u) {
    partials[SQ.out_offset + wid.x] = scratch[0];
  }
}

@group(0) @binding(0) var<uniform> S: SumParams;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn sum_partials(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  var acc = 0.0;
  for (var i = lid; i < S.count; i += WG) {
    acc += parts[i];
  }
  scratch[lid] = acc;
  workgroupBarrier();
  tree_sum(lid);
  if (lid == 0u) {
    var v = S.scale * scratch[0];
    if (S.accumulate != 0u) {
      v += out[S.out_index];
    }
    out[S.out_index] = v;
  }
}
