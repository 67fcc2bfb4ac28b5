// The trainer watches its own curves and gives advice with the usual remedy; pure functions over the history.

export type AdviceKind =
  'loss_not_falling' | 'loss_oscillating' | 'grad_norm_spike' | 'loss_falling_fast' | 'overfitting';

export interface Advice {
  kind: AdviceKind;
  step: number;
  /** What was seen, with the numbers. */
  message: string;
  /** What usually helps. */
  remedy: string;
}

export interface AdviceOptions {
  /** Steps in a comparison window (default 10). */
  window: number;
  /** The same kind of advice is not repeated within this many steps (default 50). */
  cooldown: number;
  /** --max-grad-norm of the run (0 = no clipping), so the grad-norm advice can say whether to turn clipping on. */
  maxGradNorm: number;
  /** The run's optimizer steps, to judge "fast" relative to its length. */
  totalSteps: number;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

export class AdviceMonitor {
  private readonly losses: number[] = [];
  private readonly norms: number[] = [];
  private readonly evals: { step: number; loss: number; train: number }[] = [];
  private readonly last = new Map<AdviceKind, number>();
  private readonly o: AdviceOptions;

  constructor(o: Partial<AdviceOptions> & Pick<AdviceOptions, 'totalSteps'>) {
    this.o = { window: 10, cooldown: 50, maxGradNorm: 1, ...o };
  }

  /** Feeds one optimizer step (finite loss and grad norm); returns the advice it triggers. */
  observeStep(step: number, loss: number, gradNorm: number): Advice[] {
    this.losses.push(loss);
    this.norms.push(gradNorm);
    const W = this.o.window;
    const out: Advice[] = [];
    const L = this.losses;
    const n = L.length;

    if (n >= 3 * W) {
      const first = mean(L.slice(0, W));
      const recent = mean(L.slice(n - W));
      if (recent >= 0.99 * first) {
        this.emit(
          out,
          'loss_not_falling',
          step,
          `the loss has not fallen in ${n} steps (first ${W}: ${first.toFixed(4)}, last ${W}: ${recent.toFixed(4)})`,
          'If the learning rate is below 1e-5, raise it (LoRA usually trains at 1e-4 to 3e-4); if the loss is noisy, ' +
            'lower it; use warmup with a cosine schedule, and check that the labels are not all masked.',
        );
      }
    }

    if (n >= W) {
      const w = L.slice(n - W);
      const m = mean(w);
      const range = (Math.max(...w) - Math.min(...w)) / m;
      let turns = 0;
      for (let i = 2; i < w.length; i++) if ((w[i] - w[i - 1]) * (w[i - 1] - w[i - 2]) < 0) turns++;
      if (range > 0.2 && turns >= W / 2) {
        this.emit(
          out,
          'loss_oscillating',
          step,
          `the loss swings by ${pct(range)} of its mean over the last ${W} steps`,
          'Lower the learning rate, or raise --grad-accum for a larger effective batch.',
        );
      }
    }

    if (this.norms.length > W) {
      const before = median(this.norms.slice(Math.max(0, this.norms.length - 1 - 2 * W), -1));
      if (gradNorm > 5 * before && before > 0) {
        this.emit(
          out,
          'grad_norm_spike',
          step,
          `grad_norm jumped to ${gradNorm.toPrecision(3)}, ${(gradNorm / before).toFixed(1)}× its recent median`,
          this.o.maxGradNorm > 0 && this.o.maxGradNorm <= 1
            ? 'Clipping at ' +
                this.o.maxGradNorm +
                ' already limits the update; if spikes repeat, lower the learning rate.'
            : 'Clip gradients at 1.0 (--max-grad-norm 1.0) and lower the learning rate.',
        );
      }
    }

    const early = Math.max(2 * W, Math.ceil(0.1 * this.o.totalSteps));
    if (n >= 2 && n <= early && (L[n - 1] < 0.1 * L[0] || L[n - 1] < 0.01)) {
      this.emit(
        out,
        'loss_falling_fast',
        step,
        `the loss fell from ${L[0].toFixed(4)} to ${L[n - 1].toFixed(4)} in ${n} steps: the model may be memorising ` +
          'the data, or the answers leak into the prompts',
        'Raise --dropout (0.05 to 0.1), train fewer epochs, and check the data for duplicates and leaked labels.',
      );
    }
    return out;
  }

  /** Feeds one evaluation; returns advice when eval loss rises while train loss falls (overfitting). */
  observeEval(step: number, evalLoss: number): Advice[] {
    const W = this.o.window;
    const train = this.losses.length ? mean(this.losses.slice(-W)) : NaN;
    this.evals.push({ step, loss: evalLoss, train });
    const out: Advice[] = [];
    const e = this.evals;
    if (e.length >= 3) {
      const [a, b, c] = e.slice(-3);
      const best = Math.min(...e.map((x) => x.loss));
      if (c.loss > b.loss && b.loss >= a.loss && c.loss > 1.01 * best && c.train < a.train) {
        this.emit(
          out,
          'overfitting',
          step,
          `eval loss rose from ${a.loss.toFixed(4)} to ${c.loss.toFixed(4)} while the train loss fell from ` +
            `${a.train.toFixed(4)} to ${c.train.toFixed(4)}: the adapter is overfitting`,
          'Keep the checkpoint with the best eval loss, train fewer epochs, raise --dropout or --weight-decay, ' +
            'and use a cosine schedule.',
        );
      }
    }
    return out;
  }

  private emit(out: Advice[], kind: AdviceKind, step: number, message: string, remedy: string): void {
    const prev = this.last.get(kind);
    if (prev !== undefined && step - prev < this.o.cooldown) return;
    this.last.set(kind, step);
    out.push({ kind, step, message, remedy });
  }
}
