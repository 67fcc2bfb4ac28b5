// Embedding gather from one row part of a (possibly split, possibly 16-bit) table: token and position embeddings.
//
// Entry point `gather`, one invocation per output element (n, c), 256 per workgroup, grid spread over (x, y):
//   @binding(0) uniform P
//   @binding(1) rw   out: array<f32>   [N, C]
//   @binding(2) read table (prelude, any float dtype, read through load_table): rows [row0, row0 + rows) of [V, C]
//   @binding(3) read ids: array<i32>  [N]
// id = clamp(ids[n], 0, V − 1); only ids inside this part are written, so one dispatch per part covers all rows.
// ACCUMULATE adds into out (GPT-2's x += wpe[pos]) instead of overwriting it.
// NOTE: the clamp only keeps reads inside the table; the CPU validates ids before upload, so it never changes a
// valid batch.

struct GatherParams {
  total: u32, // N · C
  C: u32,
  V: u32,
  row0: u32,
  rows: u32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> P: GatherParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> ids: array<i32>;

const WG = 256u;

@compute @workgroup_size(WG)
fn gather(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
  if (idx >= P.total) { return; }
  let n = idx / P.C;
  let c = idx % P.C;
  let id = u32(clamp(ids[n], 0, i32(P.V) - 1));
  if (id < P.row0 || id >= P.row0 + P.rows) { return; }
  let v = load_table((id - P.row0) * P.C + c);
  if (ACCUMULATE) { out[idx] += v; } else { out[idx] = v; }
}
