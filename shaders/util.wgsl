// Small utility kernels.
//   warm_up: binding 0 rw array<f32> (any length >= 64); writes zeros. Used once to start the driver's threads.

@group(0) @binding(0) var<storage, read_write> warm_buf: array<f32>;

@compute @workgroup_size(64)
fn warm_up(@builtin(global_invocation_id) gid: vec3<u32>) {
  warm_buf[gid.x] = 0.0;
}
