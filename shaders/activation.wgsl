// MLP activations, forward and backward, elementwise in f32: SwiGLU (Llama, Qwen2) and GELU-tanh (GPT-2 gelu_new).
//
// One invocation per element, 256 per workgroup; grid spread over (x, y), i = (wid.x + wid.y · nwg.x) · 256 + lid.x.
//   swiglu_forward:  0 uniform P, 1 rw h[n],     2 read gate[n], 3 read up[n]             h = silu(gate) · up
//   swiglu_backward: 0 uniform P, 1 rw dgate[n], 2 read gate[n], 3 read up[n], 4 read dh[n], 5 rw dup[n]
//   gelu_forward:    0 uniform P, 1 rw y[n],     2 read x[n]
//   gelu_backward:   0 uniform P, 1 rw dx[n],    2 read x[n], 3 read dy[n]
// NOTE: WGSL lets implementations assume no overflow or infinities, so exp() arguments are clamped to ±80 (exp(80)
// ≈ 5.5e34 is finite) and the cubic of GELU is taken of x clamped to ±20, where its sigmoid is long saturated.
// GELU-tanh is computed as x · sigmoid(2u), identical to 0.5·x·(1 + tanh(u)) but without tanh's cancellation of
// 1 + tanh(u) for negative u, and without relying on tanh for large arguments.

struct ActParams {
  n: u32,
}

@group(0) @binding(0) var<uniform> P: ActParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> out2: array<f32>;

const WG = 256u;
const GELU_K = 0.7978845608028654; // sqrt(2 / pi)
const GELU_C = 0.044715;

fn elem(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid.x;
}

// exp(-v) with its argument kept finite-safe.
fn exp_neg(v: f32) -> f32 {
  return exp(clamp(-v, -80.0, 80.0));
}

@compute @workgroup_size(WG)
fn swiglu_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i >= P.n) { return; }
  let x = a[i];
  out[i] = x / (1.0 + exp_neg(x)) * b[i];
}

@compute @workgroup_size(WG)
fn swiglu_backward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i >= P.n) { return; }
  let x = a[i];
  let e = exp_neg(x);
  let s = 1.0 / (1.0 + e);
  // 1 − s as e·s: no cancellation where s is near 1.
  out[i] = g[i] * b[i] * s * (1.0 + x * (e * s));
  out2[i] = g[i] * x * s;
}

// Returns (sigmoid(2u), 1 − sigmoid(2u), d(2u)/dx) for u = sqrt(2/pi)·(x + 0.044715·x³).
fn gelu_parts(x: f32) -> vec3<f32> {
  let xc = clamp(x, -20.0, 20.0);
  let x2 = xc * xc;
  let v = 2.0 * GELU_K * xc * (1.0 + GELU_C * x2);
  let e = exp_neg(v);
  let s = 1.0 / (1.0 + e);
  return vec3(s, e * s, 2.0 * GELU_K * (1.0 + 3.0 * GELU_C * x2));
}

@compute @workgroup_size(WG)
fn gelu_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i >= P.n) { return; }
  let x = a[i];
  out[i] = x * gelu_parts(x).x;
}

@compute @workgroup_size(WG)
fn gelu_backward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = elem(lid, wid, nwg);
  if (i >= P.n) { return; }
  let x = a[i];
  let p = gelu_parts(x);
  // d/dx x·σ(v) = σ + x·σ·(1 − σ)·v'; σ·(1 − σ) underflows to 0 where saturated, so x·v' (≤ 1e4·90) stays finite.
  out[i] = b[i] * (p.x + x * (p.x * p.y) * p.z);
}
