// Column-block copies between row-major matrices: split a fused projection (GPT-2's c_attn) and join its gradients.
//
// Entry point `copy_columns`, workgroup 64; one invocation per element of the copied block.
//   @binding(0) uniform ColParams
//   @binding(1) read    src: array<f32>   [rows, src_cols]; reads columns src_off .. src_off + width
//   @binding(2) rw      dst: array<f32>   [rows, dst_cols]; writes columns dst_off .. dst_off + width
// Grid: x·y spread of ceil(rows·width / 64) workgroups (x at most 65535).

struct ColParams {
  rows: u32,
  width: u32,
  src_cols: u32,
  src_off: u32,
  dst_cols: u32,
  dst_off: u32,
  grid_x: u32,
}

@group(0) @binding(0) var<uniform> P: ColParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn copy_columns(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * P.grid_x * 64u + gid.x;
  if (i >= P.rows * P.width) { return; }
  let r = i / P.width;
  let c = i % P.width;
  dst[r * P.dst_cols + P.dst_off + c] = src[r * P.src_cols + P.src_off + c];
}
