// The training loop: micro-batches → gradients → global norm and clipping → optimizer → schedule; logs, eval, checkpoints.
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import type { TrainableModel } from '../model/trainable';
import { trainedTokens } from '../model/trainable';
import { AdviceMonitor } from './advice';
import type { Collate, Example, StepPlan } from './batches';
import { epochOrder, microBatch, planSteps, stepGroup } from './batches';
import type { NamedArray } from './checkpoint';
import { latestCheckpoint, loadCheckpoint } from './checkpoint';
import type { EndStatus, TrainerEvent, TrainerListener } from './events';
import { sumInto, SumOfSquares } from './grad-norm';
import { RunLog } from './metrics';
import type { OptimizerConfig, Slot } from './optimizer';
import { loraSlots, Optimizer } from './optimizer';
import type { ScheduleConfig, SchedulerKind } from './schedule';
import { lrLambda, warmupSteps } from './schedule';
import type { CheckpointStorage } from './storage';

export interface TrainerConfig {
  learningRate: number;
  scheduler: SchedulerKind;
  warmupSteps: number;
  warmupRatio: number;
  /** Default 0.5 for cosine, 1 for cosine_with_restarts (Transformers' defaults). */
  numCycles?: number;
  /** per_device_train_batch_size. */
  batchSize: number;
  gradAccum: number;
  /** May be fractional, as num_train_epochs. Ignored when maxSteps > 0. */
  epochs: number;
  maxSteps: number;
  optimizer: OptimizerConfig;
  /** 0 turns clipping off; the pre-clip norm is reported either way. */
  maxGradNorm: number;
  seed: number;
  /** 0 = never (each of these three). */
  evalSteps: number;
  saveSteps: number;
  loggingSteps: number;
  /** Complete checkpoints kept (oldest deleted first); default all, as save_total_limit = None. */
  saveTotalLimit?: number;
  /** Non-finite steps in a row that stop the run (default 3). */
  maxBadSteps?: number;
  /** Default: batchSize (per_device_eval_batch_size is 8 in Transformers; ours follows the train batch). */
  evalBatchSize?: number;
  /** Default true. */
  shuffle?: boolean;
  /** Keep a GPU copy of the weights before each update, to hand back the last good adapter on divergence (default true). */
  keepLastGood?: boolean;
}

export interface TrainerInit {
  ctx: GpuContext;
  model: TrainableModel;
  train: readonly Example[];
  evalSet?: readonly Example[];
  collate: Collate;
  /** Rooted at the run's output folder: checkpoints, metrics.jsonl and trainer_state.json go there. */
  storage: CheckpointStorage;
  onEvent?: TrainerListener;
  /** Aborting stops after the current step, with a checkpoint. */
  signal?: AbortSignal;
  /** Milliseconds, for elapsed time and throughput (default performance.now). */
  clock?: () => number;
}

export interface TrainResult {
  status: EndStatus;
  step: number;
  message: string;
  /** The last checkpoint written in this session, if any. */
  checkpoint: string | null;
}

export class Trainer {
  readonly plan: StepPlan;
  readonly schedule: ScheduleConfig;
  readonly slots: readonly Slot[];
  private readonly optimizer: Optimizer;
  private readonly gradSq: SumOfSquares;
  private readonly stats: Tensor; // [2]: Σ g² over all LoRA gradients, summed token loss of the step
  private readonly lossSum: Tensor; // [1]: what the model adds its token losses into
  private readonly backup: Tensor[] | null;
  private readonly log: RunLog;
  private readonly clock: () => number;
  private lostReason: string | null = null;
  private order: Uint32Array = new Uint32Array(0);
  private lastCheckpoint: string | null = null;

  constructor(
    private readonly init: TrainerInit,
    readonly config: TrainerConfig,
  ) {
    const c = config;
    if (!(c.learningRate >= 0)) throw new Error(`learning rate must be >= 0, got ${c.learningRate}`);
    this.plan = planSteps(init.train.length, c.batchSize, c.gradAccum, c.epochs, c.maxSteps);
    this.schedule = {
      kind: c.scheduler,
      totalSteps: this.plan.totalSteps,
      warmupSteps: warmupSteps(this.plan.totalSteps, c.warmupSteps, c.warmupRatio),
      numCycles: c.numCycles,
    };
    const { ctx, model } = init;
    this.slots = loraSlots(model.lora);
    this.optimizer = new Optimizer(ctx, this.slots, c.optimizer);
    this.gradSq = new SumOfSquares(
      ctx,
      this.slots.map((s) => s.grad),
      'grad sumsq partials',
    );
    this.stats = ctx.zeros([2], 'f32', 'step stats');
    this.lossSum = ctx.zeros([1], 'f32', 'loss sum');
    this.backup =
      c.keepLastGood === false
        ? null
        : this.slots.map((s) => ctx.empty(s.param.shape, 'f32', `${s.name} (last good)`));
    this.clock = init.clock ?? (() => performance.now());
    this.log = new RunLog(init.storage, c, this.plan, init.train.length, (e) => this.emit(e));
    void ctx.lost.then((info) => {
      this.lostReason = info.message || String(info.reason);
    });
  }

  /** Trains to the end (or until stopped); `resume` = true picks the latest complete checkpoint, a string names one. */
  async run(o: { resume?: boolean | string } = {}): Promise<TrainResult> {
    try {
      return await this.loop(o.resume ?? false);
    } catch (e) {
      if (this.lostReason === null) throw e;
      return this.end(
        'device_lost',
        `the GPU device was lost (${this.lostReason}); resume from ${this.lastCheckpoint ?? 'the latest checkpoint'} on a new device`,
      );
    }
  }

  private async loop(resume: boolean | string): Promise<TrainResult> {
    const { ctx, model, train, collate, signal } = this.init;
    const c = this.config;
    const L = this.log;
    let resumedFrom: string | null = null;
    if (resume) {
      resumedFrom = typeof resume === 'string' ? resume : await latestCheckpoint(this.init.storage);
      if (resumedFrom) await this.restore(resumedFrom);
    }
    if (!resumedFrom) {
      await L.startFresh();
      this.order = epochOrder(train.length, c.seed, 0, c.shuffle ?? true);
    }
    L.beginSession(this.clock());
    this.emit({
      type: 'start',
      totalSteps: this.plan.totalSteps,
      stepsPerEpoch: this.plan.stepsPerEpoch,
      epochs: this.plan.epochs,
      warmupSteps: this.schedule.warmupSteps,
      rows: train.length,
      resumedFrom,
      step: L.step,
    });
    const advice = new AdviceMonitor({ totalSteps: this.plan.totalSteps, maxGradNorm: c.maxGradNorm });
    const maxBad = c.maxBadSteps ?? 3;

    while (L.step < this.plan.totalSteps) {
      if (this.lostReason !== null) throw new Error(this.lostReason);
      if (L.batchesDone >= this.plan.batchesPerEpoch) {
        L.epochIndex += 1;
        L.batchesDone = 0;
        this.order = epochOrder(train.length, c.seed, L.epochIndex, c.shuffle ?? true);
      }
      // Groups start at multiples of grad_accum within an epoch; the last one of an epoch takes the remainder.
      const group = stepGroup(this.plan, c.gradAccum, Math.floor(L.batchesDone / c.gradAccum));
      const batches = group.map((b) => collate(microBatch(train, this.order, c.batchSize, b)));
      const tokens = batches.reduce((n, b) => n + trainedTokens(b), 0);
      const lr = c.learningRate * lrLambda(this.schedule, L.step);

      let loss = NaN;
      let norm = NaN;
      if (tokens > 0) {
        model.zeroGrads();
        ctx.fill(this.lossSum, 0);
        // NOTE: every micro-batch's gradient is scaled by 1 / (trained tokens of the whole step), so the sum over
        // micro-batches is the gradient of the mean loss over all of them (Transformers' num_items_in_batch).
        batches.forEach((b, i) =>
          model.forwardBackward(b, {
            gradScale: 1 / tokens,
            lossSum: this.lossSum,
            dropoutStep: L.microStep + i,
          }),
        );
        this.gradSq.record(this.stats, 0);
        sumInto(ctx, this.lossSum, 1, this.stats, 1);
        const [sq, sum] = await ctx.read(this.stats);
        loss = sum / tokens;
        norm = Math.sqrt(sq);
      }
      L.step += 1;
      L.batchesDone = group[group.length - 1] + 1;
      L.microStep += group.length;
      L.tokensSeen += tokens;
      const epoch = L.epochIndex + L.batchesDone / this.plan.batchesPerEpoch;

      if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
        const reason =
          tokens === 0
            ? 'no trained tokens in this step (every label is -100)'
            : `${Number.isFinite(loss) ? 'gradient norm' : 'loss'} is not finite (loss ${loss}, grad_norm ${norm})`;
        if (tokens > 0) L.consecutiveBad += 1;
        await L.skip(L.step, lr, reason);
        if (L.consecutiveBad >= maxBad) return this.diverged(maxBad, lr);
      } else {
        L.consecutiveBad = 0;
        if (this.backup) this.slots.forEach((s, k) => ctx.copy(s.param, this.backup![k]));
        // torch.nn.utils.clip_grad_norm_: grads ·= min(1, max_norm / (total_norm + 1e-6)).
        const clip = c.maxGradNorm > 0 ? Math.min(1, c.maxGradNorm / (norm + 1e-6)) : 1;
        this.optimizer.step(lr, clip);
        const m = L.stepDone({
          loss,
          norm,
          lr,
          epoch,
          tokens,
          now: this.clock(),
          gpuBytes: ctx.pool.snapshot().liveBytes,
        });
        for (const a of advice.observeStep(L.step, m.loss, m.grad_norm)) this.emit({ type: 'advice', ...a });
        await L.maybeLog(m);
      }

      const last = L.step >= this.plan.totalSteps;
      if (this.init.evalSet?.length && c.evalSteps > 0 && (L.step % c.evalSteps === 0 || last)) {
        const ev = await this.evaluate();
        await L.evalDone(ev.loss, ev.tokens, epoch);
        for (const a of advice.observeEval(L.step, ev.loss)) this.emit({ type: 'advice', ...a });
      }
      const stop = signal?.aborted === true && !last;
      // No checkpoint while steps are failing: the newest one on disk must stay a good adapter.
      const good = L.consecutiveBad === 0;
      if (good && (stop || (c.saveSteps > 0 && (L.step % c.saveSteps === 0 || last)))) await this.save();
      if (stop) {
        return this.end('stopped', `stopped at step ${L.step}; resume from ${this.lastCheckpoint}`);
      }
    }
    await L.finish(this.clock());
    return this.end('completed', `trained ${L.step} steps`);
  }

  /** Mean loss over all trained tokens of the eval set (no dropout). */
  async evaluate(): Promise<{ loss: number; tokens: number }> {
    const { ctx, model, collate } = this.init;
    const set = this.init.evalSet ?? [];
    const bs = this.config.evalBatchSize ?? this.config.batchSize;
    ctx.fill(this.lossSum, 0);
    let tokens = 0;
    for (let i = 0; i < set.length; i += bs) {
      const batch = collate(set.slice(i, i + bs));
      tokens += trainedTokens(batch);
      model.forwardLoss(batch, this.lossSum);
    }
    const [sum] = await ctx.read(this.lossSum);
    return { loss: sum / tokens, tokens };
  }

  /** The current LoRA weights, read back, in PEFT names (what an adapter file holds). */
  async adapter(): Promise<NamedArray[]> {
    const out: NamedArray[] = [];
    for (const s of this.slots)
      out.push({ name: s.name, shape: s.param.shape, data: await this.init.ctx.read(s.param) });
    return out;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.gradSq.dispose();
    for (const t of [this.stats, this.lossSum, ...(this.backup ?? [])]) t.dispose();
  }

  private async diverged(maxBad: number, lr: number): Promise<TrainResult> {
    const L = this.log;
    let kept = `the adapter is the one from before the first of them`;
    if (this.backup && L.lastApplied > 0) {
      // The weights the last applied update started from gave a finite loss; the update itself led to the bad steps.
      this.slots.forEach((s, k) => this.init.ctx.copy(this.backup![k], s.param));
      kept = `the adapter is kept as it was after step ${L.lastApplied - 1}, the last one whose loss was finite`;
    }
    await this.init.ctx.sync();
    return this.end(
      'diverged',
      `training diverged: ${maxBad} steps in a row had a non-finite loss or gradient (up to step ${L.step}, ` +
        `learning rate ${lr.toPrecision(3)}); ${kept}. Lower the learning rate, keep --max-grad-norm at 1.0, ` +
        `and add warmup (--warmup-ratio 0.03).`,
    );
  }

  private async save(): Promise<void> {
    const adapter = new Map((await this.adapter()).map((a) => [a.name, a]));
    const dir = await this.log.saveCheckpoint(
      adapter,
      await this.optimizer.snapshot(),
      this.order,
      this.clock(),
    );
    this.lastCheckpoint = dir;
    this.emit({ type: 'checkpoint', step: this.log.step, dir });
  }

  private async restore(dir: string): Promise<void> {
    const ck = await loadCheckpoint(this.init.storage, dir);
    const r = ck.state.lora_studio;
    const c = this.config;
    const mismatch: string[] = [];
    if (r.rows !== this.init.train.length)
      mismatch.push(`${r.rows} training rows, now ${this.init.train.length}`);
    if (r.batch_size !== c.batchSize) mismatch.push(`batch size ${r.batch_size}, now ${c.batchSize}`);
    if (r.grad_accum !== c.gradAccum) mismatch.push(`grad accumulation ${r.grad_accum}, now ${c.gradAccum}`);
    if (r.seed !== c.seed) mismatch.push(`seed ${r.seed}, now ${c.seed}`);
    if (ck.order.length !== this.init.train.length) mismatch.push(`a data order of ${ck.order.length} rows`);
    if (mismatch.length)
      throw new Error(`cannot resume from ${dir}: it was written with ${mismatch.join('; ')}`);
    for (const s of this.slots) {
      const a = ck.adapter.get(s.name);
      if (!a || a.data.length !== s.param.size)
        throw new Error(`${dir}: ${s.name} is missing or has another shape`);
      this.init.ctx.write(s.param, a.data);
    }
    this.optimizer.restore(ck.optimizer);
    this.order = ck.order;
    await this.log.resumeFrom(ck.state);
    this.lastCheckpoint = dir;
  }

  private end(status: EndStatus, message: string): TrainResult {
    this.emit({ type: 'end', status, step: this.log.step, message });
    return { status, step: this.log.step, message, checkpoint: this.lastCheckpoint };
  }

  private emit(e: TrainerEvent): void {
    this.init.onEvent?.(e);
  }
}
