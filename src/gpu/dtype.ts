// Element types of GPU tensors and their storage sizes.

/** `bf16` is stored two to a u32 (low half first) and widened to f32 inside kernels. */
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32';

/** Bytes a tensor of `n` elements of `dtype` occupies, padded to whole 4-byte words (WGSL's smallest storage unit). */
export function byteSize(dtype: DType, n: number): number {
  const raw = dtype === 'f16' || dtype === 'bf16' ? n * 2 : n * 4;
  return Math.ceil(raw / 4) * 4;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
