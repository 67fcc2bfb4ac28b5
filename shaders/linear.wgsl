// Bias of a frozen linear layer, added after the matmul (the weight's dtype is read through the prelude).
//
// Entry point `bias_add`, workgroup 256, one invocation per element of y:
//   @binding(0) uniform BiasParams { rows = N, cols = out, x_stride }
//   @binding(1) rw      y: array<f32>      [N, out]
//   @binding(2) read    bias (declared by the prelude: f32, f16 or bf16, read through load_bias) [out]
// y[n, o] += bias[o]. Grid (x, y) with x ≤ 65535: element index = (wid.y · x_stride + wid.x) · 256 + lane.
// A separate pass over y costs one read and write of y; it keeps matmul.wgsl free of epilogue variants.

struct BiasParams {
  rows: u32,
  cols: u32,
  x_stride: u32,
}

@group(0) @binding(0) var<uniform> P: BiasParams;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn bias_add(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = (wid.y * P.x_stride + wid.x) * 256u + lid.x;
  if (i >= P.rows * P.cols) { return; }
  y[i] += load_bias(i % P.cols);
}
