// A frozen weight matrix on the GPU, split by rows into parts when it exceeds one storage binding.
import type { DType } from './dtype';
import type { Tensor } from './tensor';

/**
 * Row-major [rows, cols] in f32, f16 or bf16. Most weights are one part; a large embedding or lm_head
 * (a 0.5B model's f32 embedding is over 500 MB) is several, each `rowsPerPart` rows (the last may be shorter).
 */
export interface Weight {
  /** Checkpoint tensor name, e.g. `model.embed_tokens.weight`. */
  name: string;
  shape: readonly [number, number];
  dtype: DType;
  parts: Tensor[];
  rowsPerPart: number;
}

/** Rows per part so that each part fits `maxBindingBytes` (an even count keeps 16-bit pairs inside one word). */
export function rowsPerPart(shape: readonly [number, number], dtype: DType, maxBindingBytes: number): number {
  const [rows, cols] = shape;
  // Parts of 16-bit weights start on a whole u32 word: rows·cols of each part before it must be even.
  const rowBytes = dtype === 'f32' ? cols * 4 : cols * 2;
  let n = Math.max(1, Math.floor(maxBindingBytes / rowBytes));
  if (dtype !== 'f32' && cols % 2 === 1 && n % 2 === 1) n -= 1;
  if (n < 1) throw new Error(`a single row of ${cols} ${dtype} values exceeds the storage binding limit`);
  return Math.min(rows, n);
}

export function disposeWeight(w: Weight): void {
  for (const p of w.parts) p.dispose();
}
