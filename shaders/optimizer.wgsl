// Optimizer updates of f32 parameters in place, as torch.optim.AdamW and torch.optim.SGD (momentum 0).
//
// Entry `adamw`, workgroup 256, one invocation per element:
//   @binding(0) uniform AdamParams
//   @binding(1) rw   p: array<f32>   [n] parameter
//   @binding(2) read g: array<f32>   [n] gradient (multiplied by grad_scale: the clipping coefficient)
//   @binding(3) rw   m: array<f32>   [n] exp_avg
//   @binding(4) rw   v: array<f32>   [n] exp_avg_sq
//   p ← p · decay                     (decay = 1 − lr·weight_decay: decoupled weight decay)
//   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
//   p ← p − step_size · m / (sqrt(v) / bc2_sqrt + ε)   (step_size = lr / (1 − β1^t), bc2_sqrt = sqrt(1 − β2^t))
//   The scalars, 1 − β1 and 1 − β2 included, are computed in float64 on the host, as PyTorch computes them in Python
//   floats (1 − f32(0.999) would be off by 1.3e-5 relative).
//
// Entry `sgd`, workgroup 256:
//   @binding(0) uniform SgdParams
//   @binding(1) rw   p: array<f32>   [n]
//   @binding(2) read g: array<f32>   [n]
//   d ← grad_scale·g + weight_decay·p  (coupled L2, as torch.optim.SGD);  p ← p − lr·d
//
// Grid: (min(ceil(n / 256), row), ceil(ceil(n / 256) / row)); element i = (wid.y · num_workgroups.x + wid.x)·256 + lid.

struct AdamParams {
  n: u32,
  decay: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  grad_scale: f32,
  step_size: f32,
  bc2_sqrt: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
}

struct SgdParams {
  n: u32,
  lr: f32,
  weight_decay: f32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> A: AdamParams;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.y * nwg.x * 256u + gid.x;
}

@compute @workgroup_size(256)
fn adamw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= A.n) {
    return;
  }
  let grad = g[i] * A.grad_scale;
  let mi = A.beta1 * m[i] + A.one_minus_beta1 * grad;
  let vi = A.beta2 * v[i] + A.one_minus_beta2 * grad * grad;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / A.bc2_sqrt + A.eps;
  p[i] = p[i] * A.decay - A.step_size * (mi / denom);
}

@group(0) @binding(0) var<uniform> S: SgdParams;

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= S.n) {
    return;
  }
  let d = g[i] * S.grad_scale + S.weight_decay * p[i];
  p[i] = p[i] - S.lr * d;
}
