// The Trainer on a toy model against a float64 reference loop: SGD and AdamW updates, schedules, accumulation,
// the last partial batch, eval, checkpoints and resume, and a diverging run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeSafetensors, listCheckpoints } from '../../src/train/checkpoint';
import type { TrainerEvent } from '../../src/train/events';
import type { CheckpointStorage } from '../../src/train/storage';
import { fromUtf8, MemoryStorage } from '../../src/train/storage';
import { NodeStorage } from '../../src/train/storage-node';
import type { TrainerConfig } from '../../src/train/trainer';
import { Trainer } from '../../src/train/trainer';
import { testGpu } from '../helpers/gpu';
import { compare, relL2 } from '../helpers/tolerance';
import type { Weights64 } from '../helpers/toy-model';
import {
  referenceTrain,
  toF64,
  TOY,
  toyCollate,
  toyExamples,
  toyInit,
  toyLossGrads,
  ToyModel,
} from '../helpers/toy-model';

// NOTE: the judge's bound. A few f32 steps of a quadratic model drift from float64 by ~1e-6 relative; 1e-4 leaves
// room for Adam's division by sqrt(v) without hiding a wrong schedule, scale or bias correction (those are O(1e-2)).
const TOL = { rel: 1e-4, abs: 1e-6 };

const BASE: TrainerConfig = {
  learningRate: 0.05,
  scheduler: 'linear',
  warmupSteps: 2,
  warmupRatio: 0,
  batchSize: 4,
  gradAccum: 2,
  epochs: 2,
  maxSteps: 0,
  optimizer: { kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
  maxGradNorm: 1,
  seed: 3,
  evalSteps: 0,
  saveSteps: 0,
  loggingSteps: 1,
};

const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

interface Run {
  trainer: Trainer;
  events: TrainerEvent[];
  storage: CheckpointStorage;
  weights: Float32Array[];
  lines: Record<string, unknown>[];
}

async function train(
  cfg: TrainerConfig,
  rows: number,
  o: {
    storage?: CheckpointStorage;
    resume?: boolean;
    evalRows?: number;
    crashAt?: number;
    abortAt?: number;
  } = {},
): Promise<Run & { status: string; message: string }> {
  const ctx = await testGpu();
  const model = new ToyModel(ctx);
  const events: TrainerEvent[] = [];
  const storage = o.storage ?? new MemoryStorage();
  const abort = new AbortController();
  const trainer = new Trainer(
    {
      ctx,
      model,
      train: toyExamples(rows, 42),
      evalSet: o.evalRows ? toyExamples(o.evalRows, 43) : undefined,
      collate: toyCollate,
      storage,
      signal: abort.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'step' && e.step === o.crashAt) throw new Error('simulated crash');
        if (e.type === 'step' && e.step === o.abortAt) abort.abort();
      },
    },
    cfg,
  );
  let status = 'crashed';
  let message = '';
  try {
    ({ status, message } = await trainer.run({ resume: o.resume }));
  } catch (e) {
    if (!String(e).includes('simulated crash')) throw e;
  }
  const weights = (await trainer.adapter()).map((a) => a.data);
  const raw = await storage.read('metrics.jsonl');
  const lines = raw
    ? fromUtf8(raw)
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  trainer.dispose();
  return { trainer, events, storage, weights, lines, status, message };
}

const flat = (w: Weights64) => w.flatMap(({ A, B }) => [A, B]);

function expectWeights(got: Float32Array[], want: Weights64): void {
  flat(want).forEach((w, k) => expect(compare(got[k], w, TOL), `tensor ${k}`).toBeNull());
}

describe('Trainer', () => {
  it('one SGD step, lr 1, whole file in one batch, no clipping: the float64 update', async () => {
    const cfg: TrainerConfig = {
      ...BASE,
      scheduler: 'constant',
      learningRate: 1,
      batchSize: 9,
      gradAccum: 1,
      maxSteps: 1,
      maxGradNorm: 0,
      optimizer: { ...BASE.optimizer, kind: 'sgd', weightDecay: 0 },
    };
    const r = await train(cfg, 9);
    const ref = referenceTrain(TOY, toF64(toyInit(TOY)), toyExamples(9, 42), cfg);
    expect(r.status).toBe('completed');
    expectWeights(r.weights, ref.weights);
    // The update is not vanishing: the weights moved by far more than the tolerance.
    expect(relL2(r.weights[1], toyInit(TOY)[0].B)).toBeGreaterThan(1e-2);
    const step = r.events.find((e) => e.type === 'step')!;
    expect(step).toMatchObject({ step: 1, epoch: 1, learning_rate: 1 });
  });

  it('AdamW with weight decay, warmup, clipping and a partial last group over 2 epochs', async () => {
    // 19 rows, batch 4: 5 micro-batches per epoch (the last has 3 rows), grad accum 2: 3 steps per epoch (2, 2, 1).
    const cfg: TrainerConfig = { ...BASE, maxGradNorm: 0.2 };
    const r = await train(cfg, 19);
    const ref = referenceTrain(TOY, toF64(toyInit(TOY)), toyExamples(19, 42), cfg);
    expect(r.status).toBe('completed');
    expect(ref.steps.length).toBe(6);
    expectWeights(r.weights, ref.weights);
    const logged = r.lines.filter((l) => l.type === 'train');
    expect(logged.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(logged.map((l) => l.epoch)).toEqual([0.4, 0.8, 1, 1.4, 1.8, 2]);
    // Replay the schedule: linear, warmup 2, 6 steps; step s used base · lambda(s − 1).
    const lambdas = [0, 0.5, 1, 0.75, 0.5, 0.25];
    logged.forEach((l, i) => {
      expect(l.learning_rate).toBeCloseTo(0.05 * lambdas[i], 12);
      expect(Math.abs((l.loss as number) - ref.steps[i].loss) / ref.steps[i].loss).toBeLessThan(1e-5);
      expect(Math.abs((l.grad_norm as number) - ref.steps[i].gradNorm) / ref.steps[i].gradNorm).toBeLessThan(
        1e-5,
      );
    });
    // Clipping was active on some step (otherwise this test would not cover it).
    expect(ref.steps.some((s) => s.gradNorm > 0.2)).toBe(true);
    // metrics.jsonl holds the optimizer steps only; the run's summary is the last entry of log_history.
    expect(r.lines.every((l) => l.type === 'train')).toBe(true);
    const state = JSON.parse(fromUtf8((await r.storage.read('trainer_state.json'))!));
    expect(state.log_history.at(-1).train_loss).toBeCloseTo(ref.steps.reduce((a, s) => a + s.loss, 0) / 6, 5);
    expect(state.global_step).toBe(6);
    expect(state.log_history[0]).toEqual({
      loss: logged[0].loss,
      grad_norm: logged[0].grad_norm,
      learning_rate: 0,
      epoch: 0.4,
      step: 1,
    });
  });

  it('batch 2 × accumulation 4 gives the update of batch 8 × 1', async () => {
    const big: TrainerConfig = { ...BASE, batchSize: 8, gradAccum: 1, epochs: 3 };
    const small: TrainerConfig = { ...big, batchSize: 2, gradAccum: 4 };
    const a = await train(big, 16);
    const b = await train(small, 16);
    a.weights.forEach((w, k) => expect(relL2(b.weights[k], w)).toBeLessThan(1e-5));
    const la = a.lines.filter((l) => l.type === 'train');
    const lb = b.lines.filter((l) => l.type === 'train');
    expect(lb.length).toBe(6);
    lb.forEach((l, i) => {
      expect(Math.abs((l.loss as number) - (la[i].loss as number))).toBeLessThan(
        1e-6 * (la[i].loss as number),
      );
      expect(l.epoch).toBe(la[i].epoch);
      expect(l.learning_rate).toBe(la[i].learning_rate);
    });
  });

  it('a crash and a resume from the last checkpoint give the uninterrupted adapter, bit for bit', async () => {
    const cfg: TrainerConfig = {
      ...BASE,
      saveSteps: 2,
      scheduler: 'cosine',
      warmupRatio: 0.2,
      warmupSteps: 0,
    };
    const full = await train(cfg, 19);
    const storage = new MemoryStorage();
    const crashed = await train(cfg, 19, { storage, crashAt: 3 });
    expect(crashed.status).toBe('crashed');
    expect(await listCheckpoints(storage)).toEqual(['checkpoint-2']);
    const resumed = await train(cfg, 19, { storage, resume: true });
    expect(resumed.status).toBe('completed');
    expect(resumed.events[0]).toMatchObject({ type: 'start', resumedFrom: 'checkpoint-2', step: 2 });
    resumed.weights.forEach((w, k) => expect(Array.from(w)).toEqual(Array.from(full.weights[k])));
    const keys = ['type', 'step', 'epoch', 'loss', 'grad_norm', 'learning_rate', 'tokens'];
    const pick = (ls: Record<string, unknown>[]) => ls.map((l) => keys.map((k) => l[k]));
    expect(pick(resumed.lines)).toEqual(pick(full.lines));
  });

  it('a graceful stop saves a checkpoint on disk, and resuming finishes the same run', async () => {
    const cfg: TrainerConfig = {
      ...BASE,
      saveSteps: 100,
      gradAccum: 1,
      optimizer: { ...BASE.optimizer, weightDecay: 0.1 },
    };
    const full = await train(cfg, 19);
    const dir = mkdtempSync(join(tmpdir(), 'lora-train-'));
    tmp.push(dir);
    const stopped = await train(cfg, 19, { storage: new NodeStorage(dir), abortAt: 4 });
    expect(stopped.status).toBe('stopped');
    expect(stopped.message).toMatch(/checkpoint-4/);
    const resumed = await train(cfg, 19, { storage: new NodeStorage(dir), resume: true });
    resumed.weights.forEach((w, k) => expect(Array.from(w)).toEqual(Array.from(full.weights[k])));
    // The checkpoint's adapter is a safetensors file with PEFT names.
    const st = decodeSafetensors(
      (await new NodeStorage(dir).read('checkpoint-4/adapter_model.safetensors'))!,
    );
    expect([...st.arrays.keys()][0]).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(st.arrays.get('base_model.model.model.layers.0.mlp.down_proj.lora_B.weight')!.shape).toEqual([
      4, 3,
    ]);
  });

  it('evaluates every --eval-steps with eval_loss = the mean token loss, and eval_ppl = exp', async () => {
    const cfg: TrainerConfig = { ...BASE, evalSteps: 2, saveSteps: 3, saveTotalLimit: 1 };
    const r = await train(cfg, 19, { evalRows: 7 });
    const evals = r.events.filter((e) => e.type === 'eval');
    expect(evals.map((e) => e.step)).toEqual([2, 4, 6]);
    const ref = referenceTrain(TOY, toF64(toyInit(TOY)), toyExamples(19, 42), cfg);
    const b = toyCollate(toyExamples(7, 43));
    const want = toyLossGrads(TOY, ref.weights, b);
    const last = evals[2];
    expect(Math.abs(last.eval_loss - want.loss / last.eval_tokens) / last.eval_loss).toBeLessThan(1e-4);
    expect(last.eval_ppl).toBeCloseTo(Math.exp(last.eval_loss), 10);
    expect(await listCheckpoints(r.storage)).toEqual(['checkpoint-6']);
  });

  it('an absurd learning rate stops cleanly after 3 non-finite steps with a finite adapter', async () => {
    const cfg: TrainerConfig = {
      ...BASE,
      learningRate: 1e6,
      scheduler: 'constant',
      maxGradNorm: 0,
      gradAccum: 1,
      epochs: 20,
      optimizer: { ...BASE.optimizer, kind: 'sgd', weightDecay: 0 },
    };
    const r = await train(cfg, 19);
    expect(r.status).toBe('diverged');
    expect(r.message).toMatch(/3 steps in a row.*Lower the learning rate/);
    const skips = r.events.filter((e) => e.type === 'skip');
    expect(skips.map((s) => s.consecutive)).toEqual([1, 2, 3]);
    for (const w of r.weights) expect(w.every(Number.isFinite)).toBe(true);
    expect(r.events[r.events.length - 1]).toMatchObject({ type: 'end', status: 'diverged' });
  });
});
