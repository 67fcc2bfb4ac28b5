// Rotary position embedding, HF rotate_half convention: within each head the pairs are (i, i + D/2).
//
// Entry point `rope`, one invocation per pair (n, h, i), 256 per workgroup, grid spread over (x, y):
//   @binding(0) uniform P
//   @binding(1) rw   y: array<f32>         [N, H·D]
//   @binding(2) read x: array<f32>         [N, H·D]  (y and x must be different buffers)
//   @binding(3) read positions: array<i32> [N]     position of row n within its packed example
//   @binding(4) read inv_freq: array<f32>  [D/2]   computed on the CPU as transformers does
// angle = f32(position) · inv_freq[i] rounded to f32 as HF computes it; (c, s) = (cos, sign · sin)(angle);
// y[i] = x[i]·c − x[i + D/2]·s, y[i + D/2] = x[i + D/2]·c + x[i]·s. sign = −1 is the backward (the transpose of
// a rotation is the rotation by the negative angle).

struct RopeParams {
  total: u32, // N · H · D/2
  half: u32,  // D/2
  H: u32,
  sign: f32,
}

@group(0) @binding(0) var<uniform> P: RopeParams;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<i32>;
@group(0) @binding(4) var<storage, read> inv_freq: array<f32>;

const WG = 256u;

// π/2 split so that k·PIO2_HI, k·PIO2_MID and k·PIO2_MID2 are exact for |k| < 2^18 (5, 5 and 6 significant bits).
const PIO2_HI = 1.5625;
const PIO2_MID = 0.00830078125;
const PIO2_MID2 = -4.41074371337890625e-6;
const PIO2_LO = -4.371138828673793e-8;

// NOTE: WGSL bounds sin and cos only to 2^-11 absolute on [−π, π] (SwiftShader is that coarse), while angles reach
// position · 1 rad. So: Cody–Waite reduction modulo π/2 (the subtractions are exact by Sterbenz, up to the final
// rounding, for angles up to 2^18·π/2 ≈ 411k rad), then Cephes' single-precision polynomials on [−π/4, π/4]
// (error ~1 ulp). Returns (cos, sin) of the f32 angle a.
fn cos_sin(a: f32) -> vec2<f32> {
  let k = round(a * 0.63661977236758134);
  let r = (((a - k * PIO2_HI) - k * PIO2_MID) - k * PIO2_MID2) - k * PIO2_LO;
  let z = r * r;
  let sn = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let cs = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  switch (i32(k) & 3) {
    case 0: { return vec2(cs, sn); }
    case 1: { return vec2(-sn, cs); }
    case 2: { return vec2(-cs, -sn); }
    default: { return vec2(sn, -cs); }
  }
}

@compute @workgroup_size(WG)
fn rope(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (idx >= P.total) { return; }
  let i = idx % P.half;
  let nh = idx / P.half; // n · H + h
  let n = nh / P.H;
  let cs = cos_sin(f32(positions[n]) * inv_freq[i]);
  let c = cs.x;
  let s = P.sign * cs.y;
  let j = nh * 2u * P.half + i;
  let x1 = x[j];
  let x2 = x[j + P.half];
  y[j] = x1 * c - x2 * s;
  y[j + P.half] = x2 * c + x1 * s;
}
