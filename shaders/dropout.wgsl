// Counter-based dropout mask, included by kernels that read a dropped-out tensor (no bindings, no entry points).
//
//   fn dropout_hash(seed, step, module_id, index) -> u32   pcg4d of the four words, first lane
//   fn dropout_keep(seed, step, module_id, index, threshold) -> bool   true when the element is kept
//
// The mask is a pure function of (seed, step, module id, element index), so backward regenerates it inside the
// kernels that need it instead of storing N x in bits per LoRA module. pcg4d (Jarzynski & Olano, "Hash Functions
// for GPU Rendering", JCGT 2020) mixes all four words in two rounds of multiply-add; it passes the usual
// statistical tests for neighbouring indices, which is what a dropout mask needs. The CPU twin is
// src/ops/dropout.ts `dropoutHash`; both must stay bit-identical.
// An element is dropped when hash < threshold, threshold = round(p · 2^32): integer compare, no float rounding.

fn dropout_hash(seed: u32, step: u32, module_id: u32, index: u32) -> u32 {
  var v = vec4<u32>(seed, step, module_id, index) * 1664525u + 1013904223u;
  v.x += v.y * v.w;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v.w += v.y * v.z;
  v ^= v >> vec4<u32>(16u);
  v.x += v.y * v.w;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v.w += v.y * v.z;
  return v.x;
}

fn dropout_keep(seed: u32, step: u32, module_id: u32, index: u32, threshold: u32) -> bool {
  return dropout_hash(seed, step, module_id, index) >= threshold;
}
