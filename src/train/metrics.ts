// The run's progress and records: counters, logging windows, metrics.jsonl, log_history, timing, checkpoint state.
import type { StepPlan } from './batches';
import type { NamedArray } from './checkpoint';
import { pruneCheckpoints, saveCheckpoint } from './checkpoint';
import type { StepMetrics, TrainerEvent } from './events';
import type { OptimizerSnapshot } from './optimizer';
import type { LogEntry, ResumeInfo, TrainerStateJson } from './state';
import { lineStep, metricsLine, trainerStateJson } from './state';
import type { CheckpointStorage } from './storage';
import { fromUtf8, utf8, writeJson } from './storage';
import type { TrainerConfig } from './trainer';

export const METRICS_FILE = 'metrics.jsonl';
export const FINAL_STATE_FILE = 'trainer_state.json';

export interface StepInput {
  loss: number;
  norm: number;
  lr: number;
  epoch: number;
  tokens: number;
  now: number;
  gpuBytes: number;
}

export class RunLog {
  // Progress: everything here is saved in checkpoints and restored on resume.
  step = 0;
  epochIndex = 0;
  batchesDone = 0;
  microStep = 0;
  tokensSeen = 0;
  consecutiveBad = 0;
  /** The last step whose update was applied (0: none yet). */
  lastApplied = 0;
  private elapsedBefore = 0;
  private window: number[] = [];
  private lossSum = 0;
  private lossCount = 0;
  private history: LogEntry[] = [];
  private bestEval: { loss: number; checkpoint: string | null } | null = null;
  private lastEvalStep = -1;
  // This session only: pace for throughput and ETA.
  private t0 = 0;
  private step0 = 0;
  private tokens0 = 0;

  constructor(
    private readonly storage: CheckpointStorage,
    private readonly c: TrainerConfig,
    private readonly plan: StepPlan,
    private readonly rows: number,
    private readonly emit: (e: TrainerEvent) => void,
  ) {}

  async startFresh(): Promise<void> {
    await this.storage.write(METRICS_FILE, new Uint8Array(0));
  }

  beginSession(now: number): void {
    this.t0 = now;
    this.step0 = this.step;
    this.tokens0 = this.tokensSeen;
  }

  private elapsed(now: number): number {
    return this.elapsedBefore + (now - this.t0) / 1000;
  }

  /** Records an applied step and emits its metrics event. */
  stepDone(s: StepInput): StepMetrics {
    this.lastApplied = this.step;
    this.window.push(s.loss);
    this.lossSum += s.loss;
    this.lossCount += 1;
    const session = Math.max(1e-9, (s.now - this.t0) / 1000);
    const steps = this.step - this.step0;
    const m: StepMetrics = {
      step: this.step,
      epoch: s.epoch,
      loss: s.loss,
      grad_norm: s.norm,
      learning_rate: s.lr,
      tokens: this.tokensSeen,
      tokens_per_second: (this.tokensSeen - this.tokens0) / session,
      elapsed: this.elapsed(s.now),
      eta: steps > 0 ? ((this.plan.totalSteps - this.step) * session) / steps : 0,
      gpu_bytes: s.gpuBytes,
    };
    this.emit({ type: 'step', ...m });
    return m;
  }

  /**
   * Every logging_steps steps, a log entry with the loss averaged over the window (as Transformers' tr_loss /
   * steps since the last log). Unlike Transformers, whose entry carries the learning rate of the step after the
   * window (it reads the scheduler after stepping it), ours carries the rate the window's last step used.
   */
  async maybeLog(m: StepMetrics): Promise<void> {
    const every = Math.max(1, this.c.loggingSteps);
    if (this.step % every !== 0 || this.window.length === 0) return;
    const loss = this.window.reduce((a, b) => a + b, 0) / this.window.length;
    this.window = [];
    this.history.push({
      loss,
      grad_norm: m.grad_norm,
      learning_rate: m.learning_rate,
      epoch: m.epoch,
      step: m.step,
    });
    await this.storage.append(METRICS_FILE, utf8(metricsLine('train', { ...m, loss })));
  }

  async skip(step: number, lr: number, reason: string): Promise<void> {
    this.emit({ type: 'skip', step, learning_rate: lr, reason, consecutive: this.consecutiveBad });
    await this.storage.append(METRICS_FILE, utf8(metricsLine('skip', { step, learning_rate: lr, reason })));
  }

  async evalDone(loss: number, tokens: number, epoch: number): Promise<void> {
    const e = { step: this.step, epoch, eval_loss: loss, eval_ppl: Math.exp(loss) };
    this.lastEvalStep = this.step;
    if (Number.isFinite(loss) && (!this.bestEval || loss < this.bestEval.loss))
      this.bestEval = { loss, checkpoint: null };
    this.history.push(e);
    // metrics.jsonl holds one line per optimizer step only; evaluations live in trainer_state.json's log_history.
    this.emit({ type: 'eval', ...e, eval_tokens: tokens });
  }

  private resumeInfo(now: number): ResumeInfo {
    return {
      epoch_index: this.epochIndex,
      batches_done: this.batchesDone,
      micro_step: this.microStep,
      seed: this.c.seed,
      rows: this.rows,
      batch_size: this.c.batchSize,
      grad_accum: this.c.gradAccum,
      total_steps: this.plan.totalSteps,
      elapsed: this.elapsed(now),
      window_losses: [...this.window],
      loss_sum: this.lossSum,
      loss_count: this.lossCount,
      consecutive_bad: this.consecutiveBad,
    };
  }

  state(now: number): TrainerStateJson {
    return trainerStateJson({
      globalStep: this.step,
      epoch: this.epochIndex + this.batchesDone / this.plan.batchesPerEpoch,
      logHistory: this.history,
      evalSteps: this.c.evalSteps,
      loggingSteps: this.c.loggingSteps,
      saveSteps: this.c.saveSteps,
      maxSteps: this.plan.totalSteps,
      numTrainEpochs: this.plan.epochs,
      tokensSeen: this.tokensSeen,
      batchSize: this.c.batchSize,
      bestEval: this.bestEval,
      resume: this.resumeInfo(now),
    });
  }

  async saveCheckpoint(
    adapter: Map<string, NamedArray>,
    optimizer: OptimizerSnapshot,
    order: Uint32Array,
    now: number,
  ): Promise<string> {
    if (this.bestEval && this.lastEvalStep === this.step && this.bestEval.checkpoint === null) {
      this.bestEval.checkpoint = `checkpoint-${this.step}`;
    }
    const dir = await saveCheckpoint(this.storage, { adapter, optimizer, order, state: this.state(now) });
    await pruneCheckpoints(this.storage, this.c.saveTotalLimit ?? Infinity);
    return dir;
  }

  /** Restores the counters and history of a checkpoint and cuts metrics.jsonl back to its step. */
  async resumeFrom(s: TrainerStateJson): Promise<void> {
    const r = s.lora_studio;
    this.step = s.global_step;
    this.lastApplied = s.global_step;
    this.epochIndex = r.epoch_index;
    this.batchesDone = r.batches_done;
    this.microStep = r.micro_step;
    this.tokensSeen = s.num_input_tokens_seen;
    this.consecutiveBad = r.consecutive_bad;
    this.elapsedBefore = r.elapsed;
    this.window = [...r.window_losses];
    this.lossSum = r.loss_sum;
    this.lossCount = r.loss_count;
    this.history = [...s.log_history];
    this.bestEval =
      s.best_metric === null ? null : { loss: s.best_metric, checkpoint: s.best_model_checkpoint };
    const old = await this.storage.read(METRICS_FILE);
    const kept = old
      ? fromUtf8(old)
          .split('\n')
          .filter((l) => l.trim() !== '' && lineStep(l) <= this.step)
      : [];
    await this.storage.write(METRICS_FILE, utf8(kept.map((l) => l + '\n').join('')));
  }

  /** Appends Transformers' closing summary and writes trainer_state.json beside the checkpoints. */
  async finish(now: number): Promise<void> {
    const runtime = this.elapsed(now);
    const epochs = this.epochIndex + this.batchesDone / this.plan.batchesPerEpoch;
    const summary = {
      step: this.step,
      epoch: epochs,
      train_loss: this.lossCount ? this.lossSum / this.lossCount : NaN,
      train_runtime: runtime,
      train_samples_per_second: (epochs * this.rows) / Math.max(runtime, 1e-9),
      train_steps_per_second: this.step / Math.max(runtime, 1e-9),
      total_flos: 0,
    };
    this.history.push(summary);
    await writeJson(this.storage, FINAL_STATE_FILE, this.state(now));
  }
}
