// Advice on synthetic curves: each rule fires on the curve it describes, and stays quiet on a healthy run.
import { describe, expect, it } from 'vitest';
import type { Advice } from '../../src/train/advice';
import { AdviceMonitor } from '../../src/train/advice';

function feed(
  losses: number[],
  norms?: number[],
  o: { maxGradNorm?: number; totalSteps?: number } = {},
): Advice[] {
  const m = new AdviceMonitor({ totalSteps: o.totalSteps ?? 1000, maxGradNorm: o.maxGradNorm ?? 1 });
  return losses.flatMap((l, i) => m.observeStep(i + 1, l, norms?.[i] ?? 1));
}

const kinds = (a: Advice[]) => a.map((x) => x.kind);

describe('advice', () => {
  it('is quiet on a healthy, gently falling curve', () => {
    const losses = Array.from({ length: 200 }, (_, i) => 2 * Math.exp(-i / 150) + 0.5 + 0.01 * Math.sin(i));
    expect(feed(losses)).toEqual([]);
  });

  it('sees a loss that does not fall', () => {
    const a = feed(Array.from({ length: 40 }, (_, i) => 2 + 0.01 * Math.sin(i)));
    expect(kinds(a)).toEqual(['loss_not_falling']);
    expect(a[0].step).toBe(30);
    expect(a[0].remedy).toMatch(/learning rate/);
  });

  it('sees a loss oscillating by more than 20%', () => {
    const a = feed(Array.from({ length: 12 }, (_, i) => (i % 2 ? 2.5 : 1.9)));
    expect(kinds(a)).toContain('loss_oscillating');
    expect(a.find((x) => x.kind === 'loss_oscillating')!.remedy).toMatch(/grad-accum/);
    // 10% swings are noise, not oscillation.
    expect(kinds(feed(Array.from({ length: 12 }, (_, i) => (i % 2 ? 2.1 : 1.9))))).not.toContain(
      'loss_oscillating',
    );
  });

  it('sees a grad-norm spike and suggests clipping at 1.0 when clipping is off', () => {
    const norms = [...Array.from({ length: 20 }, (_, i) => 0.5 + 0.01 * i), 9];
    const losses = Array.from({ length: 21 }, (_, i) => 2 - 0.001 * i);
    const off = feed(losses, norms, { maxGradNorm: 0 });
    expect(kinds(off)).toEqual(['grad_norm_spike']);
    expect(off[0].step).toBe(21);
    expect(off[0].remedy).toMatch(/--max-grad-norm 1\.0/);
    expect(feed(losses, norms, { maxGradNorm: 1 })[0].remedy).toMatch(/lower the learning rate/);
  });

  it('sees a loss falling implausibly fast', () => {
    const a = feed([3, 1.5, 0.5, 0.2], undefined, { totalSteps: 300 });
    expect(kinds(a)).toEqual(['loss_falling_fast']);
    expect(a[0].remedy).toMatch(/dropout/);
  });

  it('sees eval loss rising while train loss falls (overfitting), once per cooldown', () => {
    const m = new AdviceMonitor({ totalSteps: 1000 });
    const out: Advice[] = [];
    let step = 0;
    const evals = [1.5, 1.4, 1.45, 1.5, 1.55];
    for (const e of evals) {
      for (let i = 0; i < 10; i++) {
        step++;
        m.observeStep(step, 2 - step * 0.01, 1);
      }
      out.push(...m.observeEval(step, e));
    }
    expect(kinds(out)).toEqual(['overfitting']);
    expect(out[0].step).toBe(40);
    expect(out[0].remedy).toMatch(/dropout.*cosine/s);
  });

  it('does not call a falling eval loss overfitting', () => {
    const m = new AdviceMonitor({ totalSteps: 1000 });
    const got = [1.5, 1.4, 1.3, 1.2].flatMap((e, k) => {
      m.observeStep(k + 1, 2 - k * 0.1, 1);
      return m.observeEval(k + 1, e);
    });
    expect(got).toEqual([]);
  });
});
