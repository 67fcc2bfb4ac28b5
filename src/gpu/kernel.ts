// How a kernel is described on the TypeScript side: its WGSL file, entry point, bindings and specialisation.

/** `uniform` is a small params block; `read` a read-only storage buffer; `rw` a read-write one. */
export type BindingKind = 'uniform' | 'read' | 'rw';

export interface KernelSpec {
  /** File name in shaders/ without `.wgsl`. */
  shader: string;
  entry: string;
  /** Binding i of @group(0) has kind bindings[i]. Declared here so that every layout is explicit. */
  bindings: readonly BindingKind[];
  /** Other shader files (without `.wgsl`) whose text is put before this one, e.g. dtype helpers. */
  includes?: readonly string[];
  /** WGSL text put first, for specialisations that override constants cannot express (types, functions). */
  prelude?: string;
  /** Pipeline-overridable constants (`override` declarations in WGSL). */
  constants?: Readonly<Record<string, number>>;
}

export function kernelKey(spec: KernelSpec): string {
  return JSON.stringify([
    spec.shader,
    spec.entry,
    spec.bindings,
    spec.includes ?? [],
    spec.prelude ?? '',
    spec.constants ?? {},
  ]);
}

/** Packs a uniform params block: u32/i32/f32 scalars in declaration order, padded to 16 bytes. */
export class Params {
  private readonly words: number[] = [];
  private readonly kinds: ('u32' | 'i32' | 'f32')[] = [];

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`u32 param out of range: ${v}`);
    this.words.push(v);
    this.kinds.push('u32');
    return this;
  }

  i32(v: number): this {
    this.words.push(v | 0);
    this.kinds.push('i32');
    return this;
  }

  f32(v: number): this {
    this.words.push(v);
    this.kinds.push('f32');
    return this;
  }

  bytes(): ArrayBuffer {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const u = new Uint32Array(buf);
    const i = new Int32Array(buf);
    const f = new Float32Array(buf);
    this.words.forEach((w, k) => {
      const kind = this.kinds[k];
      if (kind === 'f32') f[k] = w;
      else if (kind === 'i32') i[k] = w;
      else u[k] = w;
    });
    return buf;
  }
}
