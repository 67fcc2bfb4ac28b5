// Shared by attention.wgsl and attention_backward.wgsl (prepended through KernelSpec.includes): the params block
// (packed by src/ops/attention.ts `params`) and the packing switch.
//   B rows, T positions, H query heads, Hkv kv heads, scale = 1/sqrt(D), stride = grid width for folded launches.

struct AttnParams {
  B: u32,
  T: u32,
  H: u32,
  Hkv: u32,
  scale: f32,
  stride: u32,
}

// With packed examples, a query attends only keys of its own segment (binding `seg`).
override SEGMENTS: bool = false;
