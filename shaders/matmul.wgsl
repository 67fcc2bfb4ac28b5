// Register-tiled matrix multiply for forward and backward passes.
//
// Entry point `matmul`, workgroup 16x16, each invocation computes a 4x4 block of C; one workgroup a 64x64 tile.
//   @binding(0) uniform MatmulParams
//   @binding(1) read    a: array<f32>            op(A) is M x K: A stored [M, K], or [K, M] when TRANS_A
//   @binding(2) read    b (declared by the prelude, any dtype, read through load_b)
//                                                 op(B) is K x N: B stored [K, N], or [N, K] when TRANS_B
//   @binding(3) rw      c: array<f32>            C stored [M, N]
// C = alpha * op(A) op(B), plus the old C when ACCUMULATE. Grid: (ceil(N/64), ceil(M/64), batch); batch b reads
// A at b*stride_a, B at b*stride_b and writes C at b*stride_c (a stride of 0 broadcasts one matrix).
// The prelude must define `fn load_b(i: u32) -> f32` over binding 2 (see src/ops/wgsl.ts).

struct MatmulParams {
  M: u32,
  N: u32,
  K: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
  alpha: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> P: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const BM = 64u;
const BN = 64u;
const BK = 16u;

var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Bs: array<f32, 1024>; // [BK][BN]

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let off_a = wid.z * P.stride_a;
  let off_b = wid.z * P.stride_b;
  let off_c = wid.z * P.stride_c;
  let tid = lid.y * 16u + lid.x;

  // One vec4 accumulator per output row: explicit registers, no dynamically indexed private array.
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);

  for (var k0 = 0u; k0 < P.K; k0 += BK) {
    // Each invocation stages 4 elements of each tile; consecutive invocations read consecutive addresses.
    for (var s = 0u; s < 4u; s++) {
      let e = tid + s * 256u;
      var mm: u32;
      var ka: u32;
      if (TRANS_A) { mm = e % BM; ka = e / BM; } else { ka = e % BK; mm = e / BK; }
      let gm = m0 + mm;
      let gka = k0 + ka;
      var va = 0.0;
      if (gm < P.M && gka < P.K) {
        if (TRANS_A) { va = a[off_a + gka * P.M + gm]; } else { va = a[off_a + gm * P.K + gka]; }
      }
      As[ka * BM + mm] = va;

      var nn: u32;
      var kb: u32;
      if (TRANS_B) { kb = e % BK; nn = e / BK; } else { nn = e % BN; kb = e / BN; }
      let gn = n0 + nn;
      let gkb = k0 + kb;
      var vb = 0.0;
      if (gn < P.N && gkb < P.K) {
        if (TRANS_B) { vb = load_b(off_b + gn * P.K + gkb); } else { vb = load_b(off_b + gkb * P.N + gn); }
      }
      Bs[kb * BN + nn] = vb;
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      // Rows ty + 16i and columns tx + 16j: strided so that neighbouring invocations touch neighbouring words.
      let ar = k * BM + lid.y;
      let bc = k * BN + lid.x;
      let bv = vec4<f32>(Bs[bc], Bs[bc + 16u], Bs[bc + 32u], Bs[bc + 48u]);
      acc0 = fma(vec4<f32>(As[ar]), bv, acc0);
      acc1 = fma(vec4<f32>(As[ar + 16u]), bv, acc1);
      acc2 = fma(vec4<f32>(As[ar + 32u]), bv, acc2);
      acc3 = fma(vec4<f32>(As[ar + 48u]), bv, acc3);
    }
    workgroupBarrier();
  }

  store_row(m0 + lid.y, n0 + lid.x, off_c, acc0);
  store_row(m0 + lid.y + 16u, n0 + lid.x, off_c, acc1);
  store_row(m0 + lid.y + 32u, n0 + lid.x, off_c, acc2);
  store_row(m0 + lid.y + 48u, n0 + lid.x, off_c, acc3);
}

fn store_row(gm: u32, gn0: u32, off_c: u32, v: vec4<f32>) {
  if (gm >= P.M) { return; }
  for (var j = 0u; j < 4u; j++) {
    let gn = gn0 + 16u * j;
    if (gn < P.N) {
      let idx = off_c + gm * P.N + gn;
      var r = P.alpha * v[j];
      if (ACCUMULATE) { r += c[idx]; }
      c[idx] = r;
    }
  }
}
