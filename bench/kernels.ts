// The hot kernels of a training step at a model's shapes (default stories260K: N = 8·128 tokens, C = 64, F = 172,
// r = 8, H = 8, Hkv = 4, D = 8). Peer: add_into over the op's main [N, C] tensor, measured in the same run, so each
// line reads "this op costs k streaming passes over its activations".
import type { GpuContext } from '../src/gpu/context';
import type { Tensor } from '../src/gpu/tensor';
import { attentionBackward, attentionForward } from '../src/ops/attention';
import { addInto } from '../src/ops/elementwise';
import { loraBackward, loraForward } from '../src/ops/lora';
import { rmsNormBackward, rmsNormForward } from '../src/ops/norm';
import { time } from './timing';

export interface KernelShapes {
  B: number;
  T: number;
  C: number;
  F: number;
  r: number;
  H: number;
  Hkv: number;
  D: number;
}

export const STORIES_260K: KernelShapes = { B: 8, T: 128, C: 64, F: 172, r: 8, H: 8, Hkv: 4, D: 8 };

function filled(ctx: GpuContext, shape: number[], label: string, seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
  return ctx.upload(data, shape, 'f32', label);
}

export async function benchKernels(ctx: GpuContext, s: KernelShapes, reps: number): Promise<string[]> {
  const N = s.B * s.T;
  const free: Tensor[] = [];
  const t = (shape: number[], label: string) => {
    const x = filled(ctx, shape, label, free.length);
    free.push(x);
    return x;
  };
  const x = t([N, s.C], 'x');
  const w = t([s.C], 'w');
  const dy = t([N, s.C], 'dy');
  const acc = t([N, s.C], 'acc');
  const A = t([s.r, s.C], 'lora_A');
  const Bf = t([s.F, s.r], 'lora_B');
  const y = t([N, s.F], 'y');
  const dyF = t([N, s.F], 'dy F');
  const gA = t([s.r, s.C], 'gradA');
  const gB = t([s.F, s.r], 'gradB');
  const dx = t([N, s.C], 'dx');
  const q = t([N, s.H * s.D], 'q');
  const k = t([N, s.Hkv * s.D], 'k');
  const v = t([N, s.Hkv * s.D], 'v');
  const dOut = t([N, s.H * s.D], 'dOut');
  const cfg = { B: s.B, T: s.T, H: s.H, Hkv: s.Hkv, D: s.D, scale: 1 / Math.sqrt(s.D) };
  const { rstd } = rmsNormForward(ctx, x, w, 1e-5);
  const { xa } = loraForward(ctx, x, A, Bf, y, { scaling: 2 });
  const { out, lse } = attentionForward(ctx, q, k, v, cfg);
  free.push(rstd, xa, out, lse);

  const peer = await time(ctx, () => addInto(ctx, acc, dy), reps);
  const cases: [string, () => void][] = [
    [
      'rms_norm forward [N, C]',
      () => Object.values(rmsNormForward(ctx, x, w, 1e-5)).forEach((r) => r.dispose()),
    ],
    ['rms_norm backward [N, C]', () => rmsNormBackward(ctx, x, w, rstd, dy).dispose()],
    [`lora forward ${s.C}->${s.F}`, () => loraForward(ctx, x, A, Bf, y, { scaling: 2 }).xa.dispose()],
    [
      `lora backward ${s.C}->${s.F}`,
      () => loraBackward(ctx, x, A, Bf, xa, dyF, gA, gB, dx, { scaling: 2, gradScale: 1e-3 }),
    ],
    [
      `attention forward H${s.H}/${s.Hkv} D${s.D}`,
      () => Object.values(attentionForward(ctx, q, k, v, cfg)).forEach((r) => r.dispose()),
    ],
    [
      `attention backward H${s.H}/${s.Hkv} D${s.D}`,
      () => Object.values(attentionBackward(ctx, q, k, v, out, lse, dOut, cfg)).forEach((r) => r.dispose()),
    ],
  ];
  const lines = [`kernels at N=${N} C=${s.C} F=${s.F} r=${s.r}; peer add_into [N, C] ${peer.toFixed(2)} ms`];
  for (const [name, run] of cases) {
    const ms = await time(ctx, run, reps);
    lines.push(
      `  ${name.padEnd(34)} ${ms.toFixed(2).padStart(8)} ms  ${(ms / peer).toFixed(1).padStart(6)}x peer`,
    );
  }
  for (const f of free) f.dispose();
  return lines;
}
