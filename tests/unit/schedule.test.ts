// Schedules against hand-computed values at every step, the step plan (epochs, accumulation, partial batches), the
// seeded data order, and the train flags.
import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/command';
import { parseTrainingArgs, TRAIN_OPTIONS, trainerConfig } from '../../src/train/args';
import { epochOrder, planSteps, stepGroup } from '../../src/train/batches';
import type { ScheduleConfig } from '../../src/train/schedule';
import { learningRateAt, lrLambda, warmupSteps } from '../../src/train/schedule';

const lambdas = (c: ScheduleConfig) => Array.from({ length: c.totalSteps + 1 }, (_, s) => lrLambda(c, s));

function expectClose(got: number[], want: number[]): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => expect(g, `step ${i}`).toBeCloseTo(want[i], 12));
}

describe('schedules (transformers.optimization)', () => {
  it('linear with warmup 2 over 10 steps', () => {
    // s < 2: s/2; then (10 − s) / 8.
    expectClose(lambdas({ kind: 'linear', totalSteps: 10, warmupSteps: 2 }), [
      0,
      0.5,
      1,
      7 / 8,
      6 / 8,
      5 / 8,
      4 / 8,
      3 / 8,
      2 / 8,
      1 / 8,
      0,
    ]);
  });

  it('linear without warmup starts at the full rate', () => {
    expectClose(lambdas({ kind: 'linear', totalSteps: 4, warmupSteps: 0 }), [1, 0.75, 0.5, 0.25, 0]);
  });

  it('cosine with warmup 1 over 5 steps (half a wave)', () => {
    // progress = (s − 1) / 4; 0.5 · (1 + cos(π · progress)).
    const c = Math.cos;
    expectClose(lambdas({ kind: 'cosine', totalSteps: 5, warmupSteps: 1 }), [
      0,
      1,
      0.5 * (1 + c(Math.PI / 4)),
      0.5,
      0.5 * (1 + c((3 * Math.PI) / 4)),
      0,
    ]);
  });

  it('cosine with num_cycles 1 comes back up to 1', () => {
    const l = lambdas({ kind: 'cosine', totalSteps: 4, warmupSteps: 0, numCycles: 1 });
    expectClose(l, [1, 0.5, 0, 0.5, 1]);
  });

  it('cosine_with_restarts, 2 cycles over 8 steps: hard restarts at 1', () => {
    // progress = s/8; 0.5 · (1 + cos(π · ((2 · progress) mod 1))); 0 once progress >= 1.
    const h = 0.5 * (1 + Math.cos(Math.PI / 4));
    const q = 0.5 * (1 + Math.cos((3 * Math.PI) / 4));
    expectClose(lambdas({ kind: 'cosine_with_restarts', totalSteps: 8, warmupSteps: 0, numCycles: 2 }), [
      1,
      h,
      0.5,
      q,
      1,
      h,
      0.5,
      q,
      0,
    ]);
  });

  it('cosine_with_restarts defaults to one cycle, after warmup', () => {
    const l = lambdas({ kind: 'cosine_with_restarts', totalSteps: 6, warmupSteps: 2 });
    expectClose(l, [
      0,
      0.5,
      1,
      0.5 * (1 + Math.cos(Math.PI / 4)),
      0.5,
      0.5 * (1 + Math.cos((3 * Math.PI) / 4)),
      0,
    ]);
  });

  it('constant ignores warmup; constant_with_warmup ramps then holds', () => {
    expectClose(lambdas({ kind: 'constant', totalSteps: 3, warmupSteps: 2 }), [1, 1, 1, 1]);
    expectClose(
      lambdas({ kind: 'constant_with_warmup', totalSteps: 5, warmupSteps: 4 }),
      [0, 0.25, 0.5, 0.75, 1, 1],
    );
  });

  it('the logged step s used lambda(s − 1); warmup ratio rounds up', () => {
    const c: ScheduleConfig = { kind: 'linear', totalSteps: 10, warmupSteps: 2 };
    expect(learningRateAt(2e-4, c, 1)).toBe(0);
    expect(learningRateAt(2e-4, c, 3)).toBeCloseTo(2e-4, 15);
    expect(warmupSteps(100, 0, 0.03)).toBe(3);
    expect(warmupSteps(10, 0, 0.01)).toBe(1);
    expect(warmupSteps(10, 5, 0.5)).toBe(5);
  });
});

describe('step plan (Transformers inner loop)', () => {
  it('keeps the last partial batch and the last short accumulation group of each epoch', () => {
    const p = planSteps(19, 4, 2, 2, 0);
    expect(p).toEqual({ batchesPerEpoch: 5, stepsPerEpoch: 3, totalSteps: 6, epochs: 2 });
    expect([0, 1, 2].map((k) => stepGroup(p, 2, k))).toEqual([[0, 1], [2, 3], [4]]);
  });

  it('max_steps overrides epochs; fractional epochs round the steps up', () => {
    expect(planSteps(19, 4, 2, 3, 7)).toMatchObject({ totalSteps: 7, epochs: 3 });
    expect(planSteps(19, 4, 2, 0.5, 0)).toMatchObject({ totalSteps: 2, epochs: 1 });
    expect(planSteps(3, 8, 4, 1, 0)).toMatchObject({ batchesPerEpoch: 1, stepsPerEpoch: 1 });
    expect(() => planSteps(0, 8, 1, 1, 0)).toThrow(/empty/);
  });

  it('shuffles by (seed, epoch), the same on every call', () => {
    const a = epochOrder(50, 42, 0);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(epochOrder(50, 42, 0))).toEqual(Array.from(a));
    expect(Array.from(epochOrder(50, 42, 1))).not.toEqual(Array.from(a));
    expect(Array.from(epochOrder(50, 43, 0))).not.toEqual(Array.from(a));
    expect(Array.from(epochOrder(5, 1, 0, false))).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('train flags', () => {
  const parse = (args: string[]) =>
    parseTrainingArgs(parseArgs({ args, options: TRAIN_OPTIONS, strict: true }).values);
  const base = ['--model', 'm', '--data', 'd.jsonl', '--out', 'o'];

  it("uses Transformers' and PEFT's defaults", () => {
    const a = parse(base);
    expect(a).toMatchObject({ lr: 5e-5, scheduler: 'linear', epochs: 3, batchSize: 8, gradAccum: 1 });
    expect(a).toMatchObject({
      maxGradNorm: 1,
      weightDecay: 0,
      warmupSteps: 0,
      loggingSteps: 1,
      maxSteps: -1,
    });
    expect(a).toMatchObject({
      r: 8,
      alpha: 8,
      dropout: 0,
      rslora: false,
      optim: 'adamw',
      seed: 42,
      evalSteps: 0,
    });
    expect(trainerConfig(a)).toMatchObject({
      maxSteps: 0,
      optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    });
  });

  it('parses the judge command line', () => {
    const a = parse([
      ...base,
      '--optim',
      'sgd',
      '--lr',
      '1',
      '--max-steps',
      '1',
      '--max-grad-norm',
      '0',
      '--dropout',
      '0',
      '--scheduler',
      'constant',
    ]);
    expect(trainerConfig(a)).toMatchObject({
      learningRate: 1,
      maxSteps: 1,
      maxGradNorm: 0,
      scheduler: 'constant',
      optimizer: { kind: 'sgd' },
    });
  });

  it('rejects bad values with the flag named', () => {
    expect(() => parse([...base, '--scheduler', 'cosin'])).toThrow(/--scheduler must be one of/);
    expect(() => parse([...base, '--batch-size', '0'])).toThrow(UsageError);
    expect(() => parse([...base, '--warmup-ratio', '1.5'])).toThrow(/--warmup-ratio/);
    expect(() => parse([...base, '--lr', 'fast'])).toThrow(/--lr wants a number/);
    expect(() => parse(['--data', 'd'])).toThrow(/--model is required/);
    expect(parse([...base, '--eval-split', '0.1']).evalSteps).toBe(50);
  });
});
