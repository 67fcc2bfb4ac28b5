// Elementwise kernels on f32 tensors, and a strided 2-D copy. One invocation per element, 256 per workgroup.
//
// Every entry: @binding(0) uniform P (n, cols, scale, ...); @binding(1) rw dst: array<f32>.
// The prelude declares @binding(2) src (any float dtype) read through `fn load_src(i: u32) -> f32` (src/ops/wgsl.ts).
//   add:      dst[i] = a[i] + src[i]              bindings 0 P, 1 dst[n], 2 src[n], 3 read a[n]
//   add_into: dst[i] += src[i]                    bindings 0 P, 1 dst[n], 2 src[n]
//   add_bias: dst[r, c] += src[c]                 bindings 0 P, 1 dst[n / cols, cols], 2 src[cols]
//   scale:    dst[i] *= P.scale                   bindings 0 P, 1 dst[n]
//   copy2d:   dst[dst_off + r·dst_ld + c] = src[src_off + r·src_ld + c] for r < n / cols, c < cols
//                                                 bindings 0 P, 1 dst, 2 src
// Grid: ceil(n / 256) workgroups spread over (x, y), element i = (wid.x + wid.y · nwg.x) · 256 + lid.x; i >= n idle.

struct EwParams {
  n: u32,
  cols: u32,
  scale: f32,
  src_off: u32,
  src_ld: u32,
  dst_off: u32,
  dst_ld: u32,
}

@group(0) @binding(0) var<uniform> P: EwParams;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;

const WG = 256u;

fn elem(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

@compute @workgroup_size(WG)
fn add(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i < P.n) { dst[i] = a[i] + load_src(i); }
}

@compute @workgroup_size(WG)
fn add_into(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i < P.n) { dst[i] += load_src(i); }
}

@compute @workgroup_size(WG)
fn add_bias(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i < P.n) { dst[i] += load_src(i % P.cols); }
}

@compute @workgroup_size(WG)
fn scale(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i < P.n) { dst[i] *= P.scale; }
}

@compute @workgroup_size(WG)
fn copy2d(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i < P.n) {
    let r = i / P.cols;
    let c = i % P.cols;
    dst[P.dst_off + r * P.dst_ld + c] = load_src(P.src_off + r * P.src_ld + c);
  }
}
