// Training a run to its end, pause or stop, streaming its events, and moving it to a new device when one is lost.
import type { GpuContext } from '../gpu/context';
import type { TrainerEvent } from '../train/events';
import { runTrainingSession } from '../train/session';
import type { CheckpointStorage } from '../train/storage';
import type { TrainResult } from '../train/trainer';
import { upload } from './load';
import type { Run, WorkerSession } from './session';
import { argsFor, StudioError } from './session';
import { metricPoint, trainableLineFor } from './setup';

/** Turns the trainer's events into protocol events of this run. */
function forward(s: WorkerSession, r: Run, e: TrainerEvent): void {
  switch (e.type) {
    case 'start':
      break;
    case 'step':
      r.lastStep = e.step;
      s.emit({ type: 'metrics', runId: r.runId, point: metricPoint(e) });
      s.emit({ type: 'progress', runId: r.runId, phase: 'train', done: e.step, total: 0 });
      break;
    case 'eval':
      s.emit({
        type: 'advice',
        runId: r.runId,
        message: `Eval at step ${e.step}: loss ${e.eval_loss.toFixed(4)}, perplexity ${e.eval_ppl.toFixed(2)}.`,
      });
      break;
    case 'skip':
      s.emit({ type: 'advice', runId: r.runId, message: `Step ${e.step} skipped: ${e.reason}.` });
      break;
    case 'advice':
      s.emit({ type: 'advice', runId: r.runId, message: `${e.message} ${e.remedy}` });
      break;
    case 'checkpoint':
      void checkpointBytes(r.storage, e.dir).then((bytes) =>
        s.emit({ type: 'checkpoint', runId: r.runId, step: e.step, bytes }),
      );
      break;
    case 'end':
      break;
    default:
      return e satisfies never;
  }
}

/**
 * Trains until the run ends, pauses or stops. A lost device is replaced: a new one is acquired, the model uploaded
 * again, and training resumes from the latest checkpoint.
 */
async function train(s: WorkerSession, id: number, r: Run, resume: boolean): Promise<void> {
  let l = s.loaded;
  if (!l) throw new StudioError('no-model', 'No model is loaded.', 'Load a model first.');
  const data = s.prepared?.key === r.dataKey ? s.prepared.data : null;
  if (!data) throw new StudioError('bad-request', 'The dataset changed since this run started.');
  const { emit, maxRetries } = s;
  r.status = 'running';
  let retries = 0;
  let first = true;
  for (;;) {
    const { args, dropped } = argsFor(s, l, r, resume);
    if (first && dropped.length && !resume)
      emit({
        type: 'advice',
        runId: r.runId,
        message: `This ${l.model.spec.arch} model has no ${dropped.join(', ')}: ${args.target ? `training ${args.target}` : 'using its default target modules'}.`,
      });
    const trainableLine = trainableLineFor(l.model, l.baseModel, args);
    r.abort = new AbortController();
    r.stopAs = null;
    let started = false;
    let res: TrainResult;
    try {
      const out = await runTrainingSession({
        ctx: l.ctx,
        model: l.model,
        baseModel: l.baseModel,
        data,
        args,
        padId: l.tok?.eosId ?? 0,
        storage: r.storage,
        signal: r.abort.signal,
        onEvent: (e) => {
          if (e.type === 'start' && !started) {
            started = true;
            if (first)
              emit({
                type: 'started',
                id,
                runId: r.runId,
                totalSteps: e.totalSteps,
                step: e.step,
                resumedFrom: e.resumedFrom,
                trainableLine,
              });
            emit({ type: 'progress', runId: r.runId, phase: 'train', done: e.step, total: e.totalSteps });
          }
          forward(s, r, e);
        },
      });
      res = out.result;
      if (res.status !== 'device_lost') r.session = out;
    } catch (e) {
      // A readback can fail before device.lost settles; the trainer then rethrows instead of reporting the loss.
      if (!(await isLost(l.ctx))) throw e;
      res = {
        status: 'device_lost',
        step: r.lastStep,
        message: 'the GPU device was lost',
        checkpoint: null,
      };
    }
    first = false;
    if (res.status === 'device_lost' && retries < maxRetries) {
      retries++;
      emit({
        type: 'advice',
        runId: r.runId,
        message: `The GPU device was lost at step ${res.step}; resuming on a new device (try ${retries} of ${maxRetries}).`,
      });
      l.model.dispose();
      const ctx = await s.context();
      const model = await upload(s, ctx, l.source);
      l = { ...l, ctx, model };
      s.loaded = l;
      resume = true;
      continue;
    }
    r.abort = null;
    if (res.status === 'device_lost') {
      r.status = 'paused';
      s.fail(
        id,
        null,
        new StudioError(
          'device-lost',
          `The GPU device was lost ${maxRetries + 1} times; training paused at step ${res.step}.`,
          'Close other GPU-heavy tabs, then press Resume: it continues from the latest checkpoint.',
        ),
      );
      emit({ type: 'done', runId: r.runId, reason: 'paused', steps: res.step, message: res.message });
      return;
    }
    const reason =
      res.status === 'completed'
        ? 'finished'
        : res.status === 'diverged'
          ? 'diverged'
          : r.stopAs === 'pause'
            ? 'paused'
            : 'stopped';
    r.status = reason === 'paused' ? 'paused' : 'ended';
    emit({ type: 'done', runId: r.runId, reason, steps: res.step, message: res.message });
    return;
  }
}

/** Trains `r` holding the device; every failure becomes an error event of the run. */
export async function startTraining(s: WorkerSession, id: number, r: Run, resume: boolean): Promise<void> {
  s.claim('training');
  try {
    await train(s, id, r, resume);
  } catch (e) {
    if (r.status === 'running') r.status = 'ended';
    s.fail(id, r.runId, e);
  } finally {
    s.busy = null;
  }
}

/** Whether the context's device is lost (or is lost within a moment). */
async function isLost(ctx: GpuContext, waitMs = 1000): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)));
  try {
    return await Promise.race([ctx.lost.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function checkpointBytes(storage: CheckpointStorage, dir: string): Promise<number> {
  let n = 0;
  try {
    for (const f of await storage.list(dir)) n += (await storage.read(`${dir}/${f}`))?.length ?? 0;
  } catch {
    // The size is informative only.
  }
  return n;
}
