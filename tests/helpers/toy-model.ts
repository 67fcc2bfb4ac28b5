// A toy TrainableModel for trainer tests: per module, loss = ½‖s·B·A·x − y‖² per trained token, on GPU kernels,
// with the same loss and gradients in float64 on the CPU (and a float64 reference of the whole training loop).
import type { GpuContext } from '../../src/gpu/context';
import type { Tensor } from '../../src/gpu/tensor';
import type { Batch, LoraParam, StepOptions, TrainableModel } from '../../src/model/trainable';
import { trainedTokens } from '../../src/model/trainable';
import { matmul, matmulInto } from '../../src/ops/matmul';
import type { Example } from '../../src/train/batches';
import { epochOrder, microBatch, planSteps, stepGroup } from '../../src/train/batches';
import { SumOfSquares } from '../../src/train/grad-norm';
import type { TrainerConfig } from '../../src/train/trainer';
import type { ScheduleConfig } from '../../src/train/schedule';
import { lrLambda, warmupSteps } from '../../src/train/schedule';
import { rng, uniform } from './random';

export interface ToyModule {
  name: string;
  in: number;
  out: number;
  r: number;
}

export const TOY_MODULES: ToyModule[] = [
  { name: 'model.layers.0.self_attn.q_proj', in: 5, out: 7, r: 3 },
  { name: 'model.layers.0.mlp.down_proj', in: 6, out: 4, r: 3 },
];

export interface ToySpec {
  vocab: number;
  modules: ToyModule[];
  scaling: number;
  seed: number;
}

export const TOY: ToySpec = { vocab: 11, modules: TOY_MODULES, scaling: 0.5, seed: 7 };

/** Fixed per-module tables: token id → input vector x, label id → target y. */
function tables(spec: ToySpec, k: number): { E: Float32Array; Y: Float32Array } {
  const m = spec.modules[k];
  return {
    E: uniform(spec.vocab * m.in, spec.seed * 100 + k * 2 + 1),
    Y: uniform(spec.vocab * m.out, spec.seed * 100 + k * 2 + 2, 0.8),
  };
}

/** Initial LoRA weights: both A and B random (B is not zero, so the very first gradients reach A too). */
export function toyInit(spec: ToySpec): { A: Float32Array; B: Float32Array }[] {
  return spec.modules.map((m, k) => ({
    A: uniform(m.r * m.in, spec.seed * 1000 + k * 2 + 1, 0.5),
    B: uniform(m.out * m.r, spec.seed * 1000 + k * 2 + 2, 0.5),
  }));
}

/** Trained positions of a batch as (input token, label) pairs: t < T−1 with labels[t+1] != −100. */
function positions(b: Batch): [number, number][] {
  const out: [number, number][] = [];
  for (let row = 0; row < b.B; row++) {
    for (let t = 0; t + 1 < b.T; t++) {
      const y = b.labels[row * b.T + t + 1];
      if (y !== -100) out.push([b.inputIds[row * b.T + t], y]);
    }
  }
  return out;
}

export class ToyModel implements TrainableModel {
  readonly lora: LoraParam[];
  private readonly tabs: { E: Float32Array; Y: Float32Array }[];

  constructor(
    private readonly ctx: GpuContext,
    readonly spec: ToySpec = TOY,
    init = toyInit(spec),
  ) {
    this.tabs = spec.modules.map((_, k) => tables(spec, k));
    this.lora = spec.modules.map((m, k) => ({
      module: m.name,
      A: ctx.upload(init[k].A, [m.r, m.in], 'f32', `${m.name}.lora_A`),
      B: ctx.upload(init[k].B, [m.out, m.r], 'f32', `${m.name}.lora_B`),
      gradA: ctx.zeros([m.r, m.in], 'f32', `${m.name}.lora_A.grad`),
      gradB: ctx.zeros([m.out, m.r], 'f32', `${m.name}.lora_B.grad`),
      scaling: spec.scaling,
    }));
  }

  zeroGrads(): void {
    for (const l of this.lora) {
      this.ctx.fill(l.gradA, 0);
      this.ctx.fill(l.gradB, 0);
    }
  }

  forwardBackward(batch: Batch, o: StepOptions): void {
    this.run(batch, o.lossSum, o.gradScale);
  }

  forwardLoss(batch: Batch, lossSum: Tensor): void {
    this.run(batch, lossSum, null);
  }

  private run(batch: Batch, lossSum: Tensor, gradScale: number | null): void {
    const pos = positions(batch);
    const N = pos.length;
    if (N === 0) return;
    const { ctx } = this;
    const s = this.spec.scaling;
    this.spec.modules.forEach((m, k) => {
      const { E, Y } = this.tabs[k];
      const x = new Float32Array(N * m.in);
      const negY = new Float32Array(N * m.out);
      pos.forEach(([tok, lab], i) => {
        x.set(E.subarray(tok * m.in, (tok + 1) * m.in), i * m.in);
        for (let j = 0; j < m.out; j++) negY[i * m.out + j] = -Y[lab * m.out + j];
      });
      const l = this.lora[k];
      const X = ctx.upload(x, [N, m.in], 'f32', 'toy X'); // [N, in]
      const R = ctx.upload(negY, [N, m.out], 'f32', 'toy R'); // [N, out]
      const H = matmul(ctx, X, l.A, { transB: true }, 'toy H'); // [N, r] = X·Aᵀ
      matmulInto(ctx, H, l.B, R, { transB: true, accumulate: true, alpha: s }); // R = s·H·Bᵀ − Y
      const sq = new SumOfSquares(ctx, [R], 'toy loss partials');
      sq.record(lossSum, 0, { scale: 0.5, accumulate: true });
      const tmp = [X, R, H];
      if (gradScale !== null) {
        const g = gradScale * s;
        matmulInto(ctx, R, H, l.gradB, { transA: true, accumulate: true, alpha: g }); // dB += g·Rᵀ·H [out, r]
        const dH = matmul(ctx, R, l.B, { alpha: g }, 'toy dH'); // [N, r]
        matmulInto(ctx, dH, X, l.gradA, { transA: true, accumulate: true }); // dA += dHᵀ·X [r, in]
        tmp.push(dH);
      }
      sq.dispose();
      for (const t of tmp) t.dispose();
    });
  }
}

// ---- float64 reference ----------------------------------------------------------------------------------------

export type Weights64 = { A: Float64Array; B: Float64Array }[];

export const toF64 = (w: { A: Float32Array; B: Float32Array }[]): Weights64 =>
  w.map(({ A, B }) => ({ A: Float64Array.from(A), B: Float64Array.from(B) }));

/** Summed token loss of a batch and its gradients (not scaled). */
export function toyLossGrads(spec: ToySpec, w: Weights64, b: Batch): { loss: number; grads: Weights64 } {
  const pos = positions(b);
  let loss = 0;
  const s = spec.scaling;
  const grads = spec.modules.map((m, k) => {
    const { E, Y } = tables(spec, k);
    const { A, B } = w[k];
    const gA = new Float64Array(m.r * m.in);
    const gB = new Float64Array(m.out * m.r);
    for (const [tok, lab] of pos) {
      const h = new Float64Array(m.r);
      for (let i = 0; i < m.r; i++)
        for (let j = 0; j < m.in; j++) h[i] += A[i * m.in + j] * E[tok * m.in + j];
      const res = new Float64Array(m.out);
      for (let o = 0; o < m.out; o++) {
        let v = 0;
        for (let i = 0; i < m.r; i++) v += B[o * m.r + i] * h[i];
        res[o] = s * v - Y[lab * m.out + o];
        loss += 0.5 * res[o] * res[o];
      }
      const dh = new Float64Array(m.r);
      for (let o = 0; o < m.out; o++) {
        for (let i = 0; i < m.r; i++) {
          gB[o * m.r + i] += s * res[o] * h[i];
          dh[i] += s * res[o] * B[o * m.r + i];
        }
      }
      for (let i = 0; i < m.r; i++)
        for (let j = 0; j < m.in; j++) gA[i * m.in + j] += dh[i] * E[tok * m.in + j];
    }
    return { A: gA, B: gB };
  });
  return { loss, grads };
}

/** Random examples: lengths 2..9, the first one or two tokens masked as a prompt. */
export function toyExamples(n: number, seed: number, vocab = TOY.vocab): Example[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const len = 2 + Math.floor(r() * 8);
    const inputIds = Int32Array.from({ length: len }, () => Math.floor(r() * vocab));
    const labels = Int32Array.from(inputIds);
    const prompt = 1 + Math.floor(r() * 2);
    for (let i = 0; i < Math.min(prompt, len - 1); i++) labels[i] = -100;
    return { inputIds, labels };
  });
}

/** Right padding with token 0 and label −100. */
export function toyCollate(examples: readonly Example[]): Batch {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.inputIds.length));
  const inputIds = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(-100);
  examples.forEach((e, row) => {
    inputIds.set(e.inputIds, row * T);
    labels.set(e.labels, row * T);
  });
  return { B, T, inputIds, labels };
}

export interface RefStep {
  loss: number;
  gradNorm: number;
  lr: number;
}

/** The whole training loop in float64: the same plan, order, schedule, clipping and optimizer as the Trainer. */
export function referenceTrain(
  spec: ToySpec,
  init: Weights64,
  train: readonly Example[],
  c: TrainerConfig,
): { weights: Weights64; steps: RefStep[] } {
  const plan = planSteps(train.length, c.batchSize, c.gradAccum, c.epochs, c.maxSteps);
  const sched: ScheduleConfig = {
    kind: c.scheduler,
    totalSteps: plan.totalSteps,
    warmupSteps: warmupSteps(plan.totalSteps, c.warmupSteps, c.warmupRatio),
    numCycles: c.numCycles,
  };
  const w = init.map(({ A, B }) => ({ A: A.slice(), B: B.slice() }));
  const state = w.map(({ A, B }) => ({
    mA: new Float64Array(A.length),
    vA: new Float64Array(A.length),
    mB: new Float64Array(B.length),
    vB: new Float64Array(B.length),
  }));
  const o = c.optimizer;
  const steps: RefStep[] = [];
  let epoch = 0;
  let done = 0;
  let order = epochOrder(train.length, c.seed, 0, c.shuffle ?? true);
  for (let step = 0; step < plan.totalSteps; step++) {
    if (done >= plan.batchesPerEpoch) {
      epoch += 1;
      done = 0;
      order = epochOrder(train.length, c.seed, epoch, c.shuffle ?? true);
    }
    const group = stepGroup(plan, c.gradAccum, Math.floor(done / c.gradAccum));
    done = group[group.length - 1] + 1;
    const batches = group.map((b) => toyCollate(microBatch(train, order, c.batchSize, b)));
    const tokens = batches.reduce((n, b) => n + trainedTokens(b), 0);
    let loss = 0;
    const g = w.map(({ A, B }) => ({ A: new Float64Array(A.length), B: new Float64Array(B.length) }));
    for (const b of batches) {
      const r = toyLossGrads(spec, w, b);
      loss += r.loss;
      r.grads.forEach((gk, k) => {
        gk.A.forEach((v, i) => (g[k].A[i] += v / tokens));
        gk.B.forEach((v, i) => (g[k].B[i] += v / tokens));
      });
    }
    let sq = 0;
    for (const gk of g) for (const arr of [gk.A, gk.B]) for (const v of arr) sq += v * v;
    const norm = Math.sqrt(sq);
    const clip = c.maxGradNorm > 0 ? Math.min(1, c.maxGradNorm / (norm + 1e-6)) : 1;
    const lr = c.learningRate * lrLambda(sched, step);
    steps.push({ loss: loss / tokens, gradNorm: norm, lr });
    const t = step + 1;
    w.forEach((wk, k) => {
      const pairs: [Float64Array, Float64Array, Float64Array, Float64Array][] = [
        [wk.A, g[k].A, state[k].mA, state[k].vA],
        [wk.B, g[k].B, state[k].mB, state[k].vB],
      ];
      for (const [p, gr, m, v] of pairs) {
        for (let i = 0; i < p.length; i++) {
          const gi = gr[i] * clip;
          if (o.kind === 'sgd') {
            p[i] -= lr * (gi + o.weightDecay * p[i]);
          } else {
            p[i] *= 1 - lr * o.weightDecay;
            m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
            v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
            const mh = m[i] / (1 - o.beta1 ** t);
            const vh = v[i] / (1 - o.beta2 ** t);
            p[i] -= (lr * mh) / (Math.sqrt(vh) + o.eps);
          }
        }
      }
    });
  }
  return { weights: w, steps };
}
