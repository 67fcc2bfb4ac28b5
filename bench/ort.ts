// An independent engine to check against: onnxruntime-web's WebGPU execution provider, on our own Dawn device.
// Each shape runs one tiny ONNX model (MatMul, or Gemm with transB = x·Wᵀ), built below as protobuf bytes; its
// result is compared with our tiled kernel (src/ops/matmul.ts) and both throughputs are printed with their ratio.
// Inputs and outputs stay on the GPU (`Tensor.fromGpuBuffer`, `preferredOutputLocation: 'gpu-buffer'`), so the
// timing covers the kernels and their dispatch, not host transfers, for both engines.
import type { GpuContext } from '../src/gpu/context';
import { matmul } from '../src/ops/matmul';
import { time } from './timing';
import type * as OrtNs from 'onnxruntime-web';

type Ort = typeof OrtNs;
type Ep = 'webgpu' | 'wasm';

// ---- A minimal protobuf writer for onnx.proto (only the fields used here) ----

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** Field `num` as a varint (wire type 0). */
const vint = (num: number, v: number): number[] => [...varint(num << 3), ...varint(v)];
/** Field `num` as length-delimited bytes (wire type 2): strings and embedded messages. */
const bytesField = (num: number, body: number[]): number[] => [
  ...varint((num << 3) | 2),
  ...varint(body.length),
  ...body,
];
const str = (num: number, s: string): number[] => bytesField(num, [...new TextEncoder().encode(s)]);

const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_INT = 2; // AttributeProto.AttributeType.INT

/** ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: {elem_type=1, shape=2: {dim=1: {dim_value=1}}}}}. */
function valueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytesField(1, vint(1, d)));
  const tensorType = [...vint(1, FLOAT), ...bytesField(2, shape)];
  return [...str(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/**
 * ModelProto{ir_version=1: 8, opset_import=8: {domain=1: "", version=2: 13}, graph=7: GraphProto{node=1,
 * name=2, input=11, output=12}}, one node: NodeProto{input=1, output=2, op_type=4, attribute=5:
 * AttributeProto{name=1, i=3, type=20}}. MatMul: Y[M,N] = A[M,K]·B[K,N]; Gemm with transB=1: Y = A·Bᵀ, B [N,K].
 */
export function matmulModel(M: number, N: number, K: number, transB: boolean): Uint8Array {
  const node = [
    ...str(1, 'A'),
    ...str(1, 'B'),
    ...str(2, 'Y'),
    ...str(4, transB ? 'Gemm' : 'MatMul'),
    ...(transB ? bytesField(5, [...str(1, 'transB'), ...vint(3, 1), ...vint(20, ATTR_INT)]) : []),
  ];
  const graph = [
    ...bytesField(1, node),
    ...str(2, 'g'),
    ...bytesField(11, valueInfo('A', [M, K])),
    ...bytesField(11, valueInfo('B', transB ? [N, K] : [K, N])),
    ...bytesField(12, valueInfo('Y', [M, N])),
  ];
  const opset = [...str(1, ''), ...vint(2, 13)];
  return new Uint8Array([
    ...vint(1, 8),
    ...str(2, 'lora-studio-bench'),
    ...bytesField(8, opset),
    ...bytesField(7, graph),
  ]);
}

// ---- The benchmark ----

/** Deterministic values in [-1, 1): a 32-bit LCG, so both engines see the same inputs every run. */
function fill(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/**
 * Tolerance on max |ours − ORT| / max(1, max |ORT|) over the whole output: both sum K f32 products, in different
 * orders (their K ≤ 1024 rounding differences stay near 1e-6). The same bound holds ours against an f64 reference on
 * sampled entries, so two engines that agree on garbage (zeros, say) still fail.
 */
export const ORT_TOLERANCE = 1e-4;

/** A result check that failed: reported as such, never taken for the EP not working. */
class MismatchError extends Error {}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/**
 * Runs each shape as MatMul (Y = A·B) and as Gemm with transB (Y = x·Wᵀ) through onnxruntime-web's WebGPU EP on
 * `ctx.device`, checks Y against our tiled kernel and times both. If the WebGPU EP cannot start, falls back to the
 * wasm EP (CPU, inputs from host memory) and says so. Returns report lines; "ort: skipped: …" when ORT cannot run.
 */
export async function benchOrt(
  ctx: GpuContext,
  shapes: [number, number, number][],
  reps: number,
): Promise<string[]> {
  let ort: Ort;
  try {
    ort = (await import('onnxruntime-web/webgpu')) as Ort;
    await exposeNavigatorGpu();
  } catch (e) {
    return [`ort: skipped: onnxruntime-web/webgpu could not be loaded: ${firstLine(e)}`];
  }
  ort.env.logLevel = 'error';
  // No proxy worker: the WebGPU EP must run on this thread, where our device lives.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const lines: string[] = [];
  let ep: Ep = 'webgpu';
  const restoreQueue = copySharedWrites(ctx.device.queue);
  try {
    for (const transB of [false, true]) {
      for (const [M, N, K] of shapes) {
        const what = `ort ${transB ? 'gemm x·Wᵀ' : 'matmul'} ${M}x${K}x${N}`;
        try {
          lines.push(`${what} ${await benchOne(ort, ctx, M, N, K, transB, reps, ep)}`);
        } catch (e) {
          if (e instanceof MismatchError) {
            lines.push(`${what} (${ep} EP): FAILED check: ${e.message}`);
            continue;
          }
          if (ep === 'wasm') {
            lines.push(`${what}: skipped: ${firstLine(e)}`);
            continue;
          }
          lines.push(
            `ort: WebGPU EP could not run in Node (${firstLine(e)}); falling back to the wasm EP (CPU)`,
          );
          ep = 'wasm';
          try {
            lines.push(`${what} ${await benchOne(ort, ctx, M, N, K, transB, reps, ep)}`);
          } catch (e2) {
            lines.push(`ort: skipped: the wasm EP failed too: ${firstLine(e2)}`);
            return lines;
          }
        }
      }
    }
  } finally {
    restoreQueue();
  }
  return lines;
}

/**
 * NOTE: ORT's WebGPU build keeps its heap in a shared WebAssembly.Memory and hands `queue.writeBuffer` views onto
 * that SharedArrayBuffer. The `webgpu` package (Dawn's Node bindings) rejects those ("Invalid argument" from
 * session.run; a direct call with such a view even segfaults), so while ORT runs, shared views are copied first.
 * Returns the function that removes the shim (the method lives on the prototype; the shim is an own property).
 */
function copySharedWrites(queue: GPUQueue): () => void {
  const original = queue.writeBuffer.bind(queue);
  const shim = (
    buffer: GPUBuffer,
    offset: number,
    data: BufferSource | SharedArrayBuffer,
    dataOffset?: number,
    size?: number,
  ): void => {
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
      const scale = data instanceof DataView ? 1 : (data as Uint8Array).BYTES_PER_ELEMENT;
      original(
        buffer,
        offset,
        bytes,
        (dataOffset ?? 0) * scale,
        size === undefined ? undefined : size * scale,
      );
    } else if (data instanceof SharedArrayBuffer) {
      original(buffer, offset, data.slice(0), dataOffset, size);
    } else {
      original(buffer, offset, data, dataOffset, size);
    }
  };
  Object.defineProperty(queue, 'writeBuffer', { value: shim, configurable: true, writable: true });
  return () => {
    delete (queue as { writeBuffer?: unknown }).writeBuffer;
  };
}

async function benchOne(
  ort: Ort,
  ctx: GpuContext,
  M: number,
  N: number,
  K: number,
  transB: boolean,
  reps: number,
  ep: Ep,
): Promise<string> {
  const bDims = transB ? [N, K] : [K, N];
  const aData = fill(M * K, 1);
  const bData = fill(K * N, 2);
  const A = ctx.upload(aData, [M, K], 'f32', 'ort A');
  const B = ctx.upload(bData, bDims, 'f32', 'ort B');
  const session = await ort.InferenceSession.create(matmulModel(M, N, K, transB), {
    executionProviders: ep === 'webgpu' ? [{ name: 'webgpu', device: ctx.device }] : ['wasm'],
    preferredOutputLocation: ep === 'webgpu' ? 'gpu-buffer' : 'cpu',
    graphOptimizationLevel: 'disabled',
  });
  try {
    await ctx.sync();
    const feeds =
      ep === 'webgpu'
        ? {
            A: ort.Tensor.fromGpuBuffer(A.buffer, { dataType: 'float32', dims: [M, K] }),
            B: ort.Tensor.fromGpuBuffer(B.buffer, { dataType: 'float32', dims: bDims }),
          }
        : { A: new ort.Tensor('float32', aData, [M, K]), B: new ort.Tensor('float32', bData, bDims) };

    // Correctness: ORT's Y against our tiled kernel, on the same inputs.
    const first = await session.run(feeds);
    const theirs = (await first.Y.getData(true)) as Float32Array;
    const C = matmul(ctx, A, B, { transB });
    const ours = await ctx.read(C);
    C.dispose();
    const rel = maxRelDiff(ours, theirs);
    if (!(rel <= ORT_TOLERANCE))
      throw new MismatchError(
        `max |ours − ort| / max(1, |ort|) = ${rel.toExponential(2)} > ${ORT_TOLERANCE}`,
      );
    const refRel = sampledRefDiff(ours, aData, bData, M, N, K, transB);
    if (!(refRel <= ORT_TOLERANCE))
      throw new MismatchError(
        `ours against f64 on sampled entries: ${refRel.toExponential(2)} > ${ORT_TOLERANCE}`,
      );

    // Throughput. ORT's run is async; both engines share the device's queue, so ctx.sync() waits for its work too.
    const ortMs = await timeAsync(
      ctx,
      async () => {
        const out = await session.run(feeds);
        out.Y.dispose();
      },
      reps,
    );
    const oursMs = await time(ctx, () => matmul(ctx, A, B, { transB }).dispose(), reps);
    const gflops = (ms: number) => (2 * M * N * K) / (ms * 1e6);
    return (
      `(${ep} EP): ours ${gflops(oursMs).toFixed(2)} GFLOP/s, ort ${gflops(ortMs).toFixed(2)} GFLOP/s, ` +
      `ours/ort ${(ortMs / oursMs).toFixed(2)}x; max diff ${rel.toExponential(1)} (tol ${ORT_TOLERANCE}): ok`
    );
  } finally {
    await session.release();
    A.dispose();
    B.dispose();
  }
}

// NOTE: the Dawn instance must outlive everything made from it (see src/gpu/node.ts); keep it here for good.
let navigatorGpu: GPU | undefined;

/**
 * ORT checks `navigator.gpu` before it starts the WebGPU EP, even when the session brings its own device. Node has
 * no `navigator` before v21 and none with `gpu` after, so give it one backed by a Dawn instance of the `webgpu`
 * package; the sessions themselves run on `ctx.device` (the `device` EP option), so that instance stays unused.
 */
async function exposeNavigatorGpu(): Promise<void> {
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (g.navigator?.gpu) return;
  navigatorGpu ??= (await import('webgpu')).create([]);
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: navigatorGpu, configurable: true });
  else
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu: navigatorGpu },
      configurable: true,
      writable: true,
    });
}

/** max |x − y| / max(1, max |y|). */
function maxRelDiff(x: Float32Array, y: Float32Array): number {
  let err = 0;
  let scale = 1;
  for (let i = 0; i < x.length; i++) {
    err = Math.max(err, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return err / scale;
}

/** The same measure for `ours` against an f64 A·op(B) on 64 entries spread over the output. */
function sampledRefDiff(
  ours: Float32Array,
  a: Float32Array,
  b: Float32Array,
  M: number,
  N: number,
  K: number,
  transB: boolean,
): number {
  const got: number[] = [];
  const want: number[] = [];
  for (let s = 0; s < 64; s++) {
    const i = (s * 37) % M;
    const j = (s * 101 + 7) % N;
    let sum = 0;
    for (let k = 0; k < K; k++) sum += a[i * K + k] * (transB ? b[j * K + k] : b[k * N + j]);
    got.push(ours[i * N + j]);
    want.push(sum);
  }
  return maxRelDiff(Float32Array.from(got), Float32Array.from(want));
}

/** Like `time`, for a run that is itself async (a warm-up run, then the mean of `reps`). */
async function timeAsync(ctx: GpuContext, run: () => Promise<void>, reps: number): Promise<number> {
  await run();
  await ctx.sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await run();
  await ctx.sync();
  return (performance.now() - t0) / reps;
}
