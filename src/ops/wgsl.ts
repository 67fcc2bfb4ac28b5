// WGSL snippets shared by ops: storage declarations that read any weight dtype as f32.
import type { DType } from '../gpu/dtype';

/**
 * Declares `@binding(binding) var<storage, read> NAME` and `fn load_NAME(i: u32) -> f32` reading element i.
 * f16 and bf16 are stored two to a u32 and widened here, which works on every adapter (no `shader-f16` needed).
 */
export function readableAs(name: string, binding: number, dtype: DType): string {
  const decl = (t: string) => `@group(0) @binding(${binding}) var<storage, read> ${name}: array<${t}>;\n`;
  switch (dtype) {
    case 'f32':
      return decl('f32') + `fn load_${name}(i: u32) -> f32 { return ${name}[i]; }\n`;
    case 'bf16':
      return (
        decl('u32') +
        `fn load_${name}(i: u32) -> f32 {\n  let w = ${name}[i >> 1u];\n` +
        `  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));\n}\n`
      );
    case 'f16':
      return (
        decl('u32') + `fn load_${name}(i: u32) -> f32 { return unpack2x16float(${name}[i >> 1u])[i & 1u]; }\n`
      );
    case 'i32':
    case 'u32':
      throw new Error(`readableAs: ${dtype} is not a float type`);
    default:
      return dtype satisfies never;
  }
}
