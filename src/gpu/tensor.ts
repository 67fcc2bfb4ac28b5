// A tensor is a storage buffer with a shape and an element type; its memory comes from the context's pool.
import type { DType } from './dtype';
import { byteSize, numel } from './dtype';
import type { BufferPool } from './pool';

export class Tensor {
  readonly size: number;
  private disposed = false;

  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    private readonly pool: BufferPool | null,
  ) {
    this.size = numel(shape);
  }

  get bytes(): number {
    return byteSize(this.dtype, this.size);
  }

  get label(): string {
    return this.buffer.label;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Hands the buffer back to the pool. Using the tensor afterwards is a bug, caught by `assertLive`. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.pool) this.pool.release(this.buffer);
    else this.buffer.destroy();
  }

  assertLive(): void {
    if (this.disposed) throw new Error(`tensor "${this.label}" used after dispose()`);
  }

  toString(): string {
    return `${this.label}[${this.shape.join(',')}] ${this.dtype}`;
  }
}

/** Throws with the tensor's name when its shape differs from the one expected. */
export function expectShape(t: Tensor, shape: readonly number[], what = t.label): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${what}: expected shape [${shape.join(',')}], got [${t.shape.join(',')}]`);
  }
}
