// One training step (forward + backward) of a real model: step time, tokens/s, peak GPU bytes with and without
// gradient checkpointing, and where the time goes per kernel. Peer: the same step without LoRA, in the same run.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DispatchArgs, GpuContext } from '../src/gpu/context';
import type { KernelSpec } from '../src/gpu/kernel';
import type { Tensor } from '../src/gpu/tensor';
import { Decoder } from '../src/model/decoder';
import { loadModel } from '../src/model/load';
import type { Batch, LoraParam } from '../src/model/trainable';
import { FolderSource } from '../src/model/sources/folder';
import { loraConfig } from '../src/lora/config';
import { uploadAdapter } from '../src/lora/gpu';
import { initAdapter } from '../src/lora/init';
import { tinyModel, writeTinyModel } from '../tests/helpers/tiny-models';

const FIXTURE = fileURLToPath(new URL('../../shared/fixtures/models/stories260K-hf', import.meta.url));

export interface StepBenchOptions {
  B: number;
  T: number;
  /** Synchronised steps timed after one warm-up; the fastest is reported. */
  reps: number;
  /** Replay every dispatch of one step alone, synchronised, to attribute time per kernel. */
  perKernel: boolean;
}

interface Measured {
  ms: number;
  peakBytes: number;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function timeStep(
  ctx: GpuContext,
  dec: Decoder,
  batch: Batch,
  reps: number,
  checkpointing: boolean,
): Promise<Measured> {
  dec.gradCheckpointing = checkpointing;
  const lossSum = ctx.zeros([1], 'f32', 'bench loss');
  const step = () => dec.forwardBackward(batch, { gradScale: 1e-3, lossSum, dropoutStep: 0 });
  step(); // warm-up: pipeline compiles, pool fill
  await ctx.sync();
  ctx.pool.resetPeak();
  // The fastest of the synchronised reps: the least disturbed by other work on a shared machine.
  let ms = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    step();
    await ctx.sync();
    ms = Math.min(ms, performance.now() - t0);
  }
  const peakBytes = ctx.pool.snapshot().peakBytes;
  lossSum.dispose();
  return { ms, peakBytes };
}

/** Records one step's dispatches, then replays each alone (synchronised) and sums the time per kernel. */
async function perKernel(ctx: GpuContext, dec: Decoder, batch: Batch): Promise<string[]> {
  dec.gradCheckpointing = false;
  const lossSum = ctx.zeros([1], 'f32', 'bench loss');
  const recorded: [KernelSpec, DispatchArgs][] = [];
  const original = ctx.dispatch.bind(ctx);
  ctx.dispatch = (spec, args) => {
    // The step disposes its temporaries; stand-ins with the same buffers let the replay bind them again.
    const bindings = args.bindings.map((b) =>
      b instanceof ArrayBuffer ? b : ({ buffer: b.buffer, assertLive: () => undefined } as unknown as Tensor),
    );
    recorded.push([spec, { ...args, bindings }]);
    original(spec, args);
  };
  // Hold every tensor the step frees, so that the replay binds live buffers (the pool would recycle them).
  const held: { dispose(): void }[] = [];
  const release = ctx.pool.release.bind(ctx.pool);
  ctx.pool.release = (buffer) => held.push({ dispose: () => release(buffer) });
  try {
    dec.forwardBackward(batch, { gradScale: 1e-3, lossSum, dropoutStep: 0 });
    await ctx.sync();
  } finally {
    ctx.dispatch = original;
    ctx.pool.release = release;
  }
  const times = new Map<string, { ms: number; count: number }>();
  for (const [spec, args] of recorded) {
    const key = `${spec.shader}.${spec.entry}`;
    const t0 = performance.now();
    ctx.dispatch(spec, args);
    await ctx.sync();
    const t = times.get(key) ?? { ms: 0, count: 0 };
    t.ms += performance.now() - t0;
    t.count += 1;
    times.set(key, t);
  }
  for (const h of held) h.dispose();
  lossSum.dispose();
  const total = [...times.values()].reduce((a, t) => a + t.ms, 0);
  return [...times]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(
      ([k, t]) =>
        `  ${k.padEnd(40)} ${t.ms.toFixed(1).padStart(9)} ms  x${String(t.count).padEnd(4)} ${((100 * t.ms) / total).toFixed(1).padStart(5)}%`,
    );
}

/** The fixture model when present, else a random tiny Llama written to a temporary folder. */
function modelFolder(): { folder: string; name: string } {
  if (existsSync(FIXTURE)) return { folder: FIXTURE, name: 'stories260K-hf' };
  console.log(`step: ${FIXTURE} absent; using a random tiny Llama instead`);
  return { folder: writeTinyModel(tinyModel('llama')), name: 'random tiny llama' };
}

export async function benchStep(ctx: GpuContext, o: StepBenchOptions): Promise<string[]> {
  const { folder, name } = modelFolder();
  const model = await loadModel(ctx, new FolderSource(folder));
  const adapter = initAdapter(
    loraConfig({ targetModules: 'all-linear', r: 8, loraAlpha: 16 }),
    model.modules,
    1,
  );
  // PEFT initialises B to zero; a non-zero B makes every LoRA term real work (the same cost either way).
  for (const t of adapter.tensors.values()) t.B.fill(0.01);
  const lora: LoraParam[] = uploadAdapter(ctx, adapter);
  const vocab = model.spec.vocabSize;
  const ids = Int32Array.from({ length: o.B * o.T }, (_, i) => (3 + i * 7) % vocab);
  const batch: Batch = { B: o.B, T: o.T, inputIds: ids, labels: ids };
  const tokens = o.B * o.T;
  const withLora = new Decoder(ctx, model, lora, {});
  const frozen = new Decoder(ctx, model, [], {});
  const lines = [
    `step: ${name}, batch ${o.B}x${o.T}, LoRA r=8 on all linear layers (${lora.length} modules)`,
  ];
  for (const checkpointing of [false, true]) {
    const a = await timeStep(ctx, withLora, batch, o.reps, checkpointing);
    const b = await timeStep(ctx, frozen, batch, o.reps, checkpointing);
    lines.push(
      `  checkpointing ${checkpointing ? 'on ' : 'off'}: ${a.ms.toFixed(0)} ms/step, ` +
        `${((tokens / a.ms) * 1000).toFixed(0)} tokens/s, peak ${mib(a.peakBytes)}; ` +
        `without LoRA ${b.ms.toFixed(0)} ms, peak ${mib(b.peakBytes)}; LoRA costs ${(a.ms / b.ms).toFixed(2)}x`,
    );
  }
  if (o.perKernel) {
    lines.push('  per kernel (each dispatch of one step replayed alone, synchronised; checkpointing off):');
    lines.push(...(await perKernel(ctx, withLora, batch)));
  }
  for (const p of lora) for (const t of [p.A, p.B, p.gradA, p.gradB]) t.dispose();
  return lines;
}
