// GpuContext: one device, its pipeline cache, buffer pool, and a recorder that batches dispatches into few submits.
import type { GpuReport } from './acquire';
import type { DType } from './dtype';
import { byteSize, numel } from './dtype';
import type { DebugFlags } from './flags';
import { debugFlags } from './flags';
import type { BindingKind, KernelSpec } from './kernel';
import { kernelKey } from './kernel';
import { BufferPool } from './pool';
import { Tensor } from './tensor';

/** Returns the WGSL text of a file in shaders/ (name without `.wgsl`). */
export type ShaderSource = (name: string) => string;

export type TypedArray = Float32Array | Int32Array | Uint32Array | Uint16Array;

export interface DispatchArgs {
  /** One entry per binding of the kernel: a tensor, or raw bytes for a `uniform` binding. */
  bindings: readonly (Tensor | ArrayBuffer)[];
  workgroups: readonly [number, number?, number?];
  label?: string;
}

/** Uniform blocks of one batch live in one arena buffer, each at its own aligned offset. */
const ARENA_BYTES = 1 << 16;
const UNIFORM_SLOT = 256;

export class GpuContext {
  readonly pool: BufferPool;
  readonly flags: DebugFlags;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: GPUBuffer;
  private arenaOffset = 0;
  private readonly slot: number;
  private pendingError: Error | null = null;
  /** Dispatches recorded since creation, for tests and the metrics panel. */
  dispatchCount = 0;
  submitCount = 0;
  /** Resolves when the device is lost, with the reason. */
  readonly lost: Promise<GPUDeviceLostInfo>;

  constructor(
    readonly device: GPUDevice,
    readonly report: GpuReport,
    private readonly shaderSource: ShaderSource,
    flags: DebugFlags = debugFlags(),
  ) {
    this.flags = flags;
    this.pool = new BufferPool(device, () => this.flush());
    this.slot = Math.max(UNIFORM_SLOT, device.limits.minUniformBufferOffsetAlignment);
    this.arena = this.makeArena();
    this.lost = device.lost;
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.pendingError ??= new Error(`WebGPU error: ${err.message}`);
    });
  }

  get hasF16(): boolean {
    return this.device.features.has('shader-f16');
  }

  get hasSubgroups(): boolean {
    return this.device.features.has('subgroups');
  }

  get maxBindingBytes(): number {
    return this.device.limits.maxStorageBufferBindingSize;
  }

  // ---- tensors -------------------------------------------------------------------------------

  /** An uninitialised tensor from the pool (contents are whatever the reused buffer held). */
  empty(shape: readonly number[], dtype: DType, label: string): Tensor {
    const bytes = byteSize(dtype, numel(shape));
    if (bytes > this.device.limits.maxBufferSize) {
      throw new Error(
        `${label}: ${bytes.toLocaleString('en-US')} bytes exceed this GPU's maxBufferSize (${this.device.limits.maxBufferSize.toLocaleString('en-US')})`,
      );
    }
    return new Tensor(this.pool.acquire(bytes, label), shape, dtype, this.pool);
  }

  zeros(shape: readonly number[], dtype: DType, label: string): Tensor {
    const t = this.empty(shape, dtype, label);
    this.fill(t, 0);
    return t;
  }

  /** Sets every 32-bit word of `t` to zero (value 0 only: clearBuffer is the fast path). */
  fill(t: Tensor, value: 0): void {
    void value;
    this.endPass();
    this.getEncoder().clearBuffer(t.buffer, 0, t.buffer.size);
  }

  /** Copies host data into a new tensor. `data` holds the raw storage words (bf16/f16 as Uint16Array). */
  upload(data: TypedArray, shape: readonly number[], dtype: DType, label: string): Tensor {
    const n = numel(shape);
    const want = byteSize(dtype, n);
    if (data.byteLength < (dtype === 'f16' || dtype === 'bf16' ? n * 2 : n * 4)) {
      throw new Error(`${label}: ${data.byteLength} bytes of data for shape [${shape.join(',')}] ${dtype}`);
    }
    const t = this.empty(shape, dtype, label);
    this.write(t, data, want);
    return t;
  }

  /** Overwrites the start of `t` with host data, ordered after all work recorded so far. */
  write(t: Tensor, data: TypedArray, bytes = data.byteLength): void {
    t.assertLive();
    // Queue writes run before the next submit's commands, so recorded-but-unsubmitted work must go first.
    this.flush();
    const padded = Math.ceil(bytes / 4) * 4;
    if (padded === data.byteLength) {
      this.device.queue.writeBuffer(t.buffer, 0, data.buffer, data.byteOffset, padded);
    } else {
      const tmp = new Uint8Array(padded);
      tmp.set(new Uint8Array(data.buffer, data.byteOffset, Math.min(bytes, data.byteLength)));
      this.device.queue.writeBuffer(t.buffer, 0, tmp);
    }
  }

  copy(src: Tensor, dst: Tensor, bytes = Math.min(src.bytes, dst.bytes)): void {
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, Math.ceil(bytes / 4) * 4);
  }

  /** Reads a tensor's raw storage back to the host (flushes recorded work first). */
  async readRaw(t: Tensor): Promise<ArrayBuffer> {
    t.assertLive();
    const bytes = t.bytes;
    const staging = this.device.createBuffer({
      label: `read ${t.label}`,
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.endPass();
    this.getEncoder().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    this.throwPending();
    return out;
  }

  /** Reads any float tensor as f32, widening f16 and bf16. */
  async read(t: Tensor): Promise<Float32Array> {
    const raw = await this.readRaw(t);
    switch (t.dtype) {
      case 'f32':
        return new Float32Array(raw, 0, t.size);
      case 'bf16':
        return bf16ToF32(new Uint16Array(raw, 0, t.size));
      case 'f16':
        return f16ToF32(new Uint16Array(raw, 0, t.size));
      case 'i32':
        return Float32Array.from(new Int32Array(raw, 0, t.size));
      case 'u32':
        return Float32Array.from(new Uint32Array(raw, 0, t.size));
      default:
        return t.dtype satisfies never;
    }
  }

  // ---- kernels -------------------------------------------------------------------------------

  pipeline(spec: KernelSpec): GPUComputePipeline {
    const key = kernelKey(spec);
    let p = this.pipelines.get(key);
    if (p) return p;
    const code = [
      spec.prelude ?? '',
      ...(spec.includes ?? []).map(this.shaderSource),
      this.shaderSource(spec.shader),
    ].join('\n');
    if (this.flags.shaders)
      console.log(`// ---- ${spec.shader}.${spec.entry} ${JSON.stringify(spec.constants ?? {})}\n${code}`);
    const module = this.device.createShaderModule({ label: `${spec.shader}.wgsl`, code });
    p = this.device.createComputePipeline({
      label: `${spec.shader}.${spec.entry}`,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [this.layout(spec.bindings)] }),
      compute: {
        module,
        entryPoint: spec.entry,
        constants: spec.constants as Record<string, number> | undefined,
      },
    });
    this.pipelines.set(key, p);
    return p;
  }

  private layout(kinds: readonly BindingKind[]): GPUBindGroupLayout {
    const key = kinds.join(',');
    let l = this.layouts.get(key);
    if (!l) {
      l = this.device.createBindGroupLayout({
        label: `layout(${key})`,
        entries: kinds.map((kind, binding) => ({
          binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: {
            type: kind === 'uniform' ? 'uniform' : kind === 'read' ? 'read-only-storage' : 'storage',
          },
        })),
      });
      this.layouts.set(key, l);
    }
    return l;
  }

  /** Records one dispatch; it runs at the next flush (or read). */
  dispatch(spec: KernelSpec, args: DispatchArgs): void {
    if (spec.bindings.length !== args.bindings.length) {
      throw new Error(
        `${spec.shader}.${spec.entry}: ${spec.bindings.length} bindings declared, ${args.bindings.length} given`,
      );
    }
    const [x, y = 1, z = 1] = args.workgroups;
    const maxWg = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new Error(
        `${spec.shader}.${spec.entry}: grid ${x}x${y}x${z} exceeds ${maxWg} workgroups per dimension`,
      );
    }
    if (x === 0 || y === 0 || z === 0) return;
    const pipeline = this.pipeline(spec);
    const entries: GPUBindGroupEntry[] = [];
    let uniformsNeeded = 0;
    for (const b of args.bindings) if (b instanceof ArrayBuffer) uniformsNeeded += this.slot;
    if (this.arenaOffset + uniformsNeeded > ARENA_BYTES) this.flush();
    args.bindings.forEach((b, binding) => {
      const kind = spec.bindings[binding];
      if (b instanceof ArrayBuffer) {
        if (kind !== 'uniform')
          throw new Error(`${spec.shader}.${spec.entry}: binding ${binding} is ${kind}, got params`);
        if (b.byteLength > this.slot)
          throw new Error(`${spec.shader}.${spec.entry}: params larger than ${this.slot} bytes`);
        this.device.queue.writeBuffer(this.arena, this.arenaOffset, b);
        entries.push({
          binding,
          resource: { buffer: this.arena, offset: this.arenaOffset, size: b.byteLength },
        });
        this.arenaOffset += this.slot;
      } else {
        if (kind === 'uniform')
          throw new Error(`${spec.shader}.${spec.entry}: binding ${binding} wants params, got ${b}`);
        b.assertLive();
        if (b.buffer.size > this.maxBindingBytes) {
          throw new Error(
            `${b.label}: ${b.buffer.size} bytes exceed maxStorageBufferBindingSize; split the tensor`,
          );
        }
        entries.push({ binding, resource: { buffer: b.buffer } });
      }
    });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    if (this.flags.validate) this.device.pushErrorScope('validation');
    const pass = this.getPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatchCount += 1;
    if (this.flags.validate) {
      const what = args.label ?? `${spec.shader}.${spec.entry}`;
      void this.device.popErrorScope().then((e) => {
        if (e) this.pendingError ??= new Error(`${what}: ${e.message}`);
      });
    }
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    this.endPass();
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.submitCount += 1;
      this.encoder = null;
    }
    // Queue order puts the next batch's uniform writes after this submit, so the arena can be reused at once.
    this.arenaOffset = 0;
  }

  /** Waits until the GPU has finished all submitted work, and surfaces any WebGPU error it raised. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwPending();
  }

  destroy(): void {
    this.flush();
    this.pool.trim();
    this.arena.destroy();
    this.device.destroy();
  }

  private throwPending(): void {
    const e = this.pendingError;
    if (e) {
      this.pendingError = null;
      throw e;
    }
  }

  private makeArena(): GPUBuffer {
    return this.device.createBuffer({
      label: 'uniform arena',
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  private getEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder({ label: 'batch' });
    return this.encoder;
  }

  private getPass(): GPUComputePassEncoder {
    this.pass ??= this.getEncoder().beginComputePass({ label: 'compute' });
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }
}

export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}

export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    out[i] =
      e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}
