// Buffer pool: reuses storage buffers by exact size and counts live and peak bytes (the studio charts them).

export interface PoolStats {
  /** Bytes in buffers handed out and not yet released. */
  liveBytes: number;
  /** Highest liveBytes since creation or the last resetPeak(). */
  peakBytes: number;
  /** Bytes held in free lists, ready for reuse. */
  cachedBytes: number;
  liveBuffers: number;
}

const ALIGN = 256;

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  private stats: PoolStats = { liveBytes: 0, peakBytes: 0, cachedBytes: 0, liveBuffers: 0 };

  constructor(
    private readonly device: GPUDevice,
    /** Called before buffers are destroyed, so that recorded work using them is submitted first. */
    private readonly beforeDestroy: () => void = () => {},
  ) {}

  /** A storage buffer of at least `bytes` (rounded up to 256), usable as copy source and destination. */
  acquire(bytes: number, label: string): GPUBuffer {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.cachedBytes -= size;
      buffer.label = label;
    } else {
      buffer = this.device.createBuffer({
        label,
        size,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      this.sizes.set(buffer, size);
    }
    this.stats.liveBytes += size;
    this.stats.liveBuffers += 1;
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.liveBytes);
    return buffer;
  }

  /** Returns a buffer for reuse. Safe while recorded work still reads it: queue order keeps later writers behind. */
  release(buffer: GPUBuffer): void {
    const size = this.sizes.get(buffer);
    if (size === undefined) throw new Error(`buffer "${buffer.label}" was not made by this pool`);
    this.stats.liveBytes -= size;
    this.stats.liveBuffers -= 1;
    this.stats.cachedBytes += size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
  }

  /** Destroys every cached buffer (the live ones stay). */
  trim(): void {
    if (this.stats.cachedBytes === 0) return;
    this.beforeDestroy();
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.cachedBytes = 0;
  }

  resetPeak(): void {
    this.stats.peakBytes = this.stats.liveBytes;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
