// The worker's handlers end to end in Node (Dawn): load a dropped model folder and a dataset, train, pause and resume,
// evaluate, export the adapter zip and the merged model, with the GPU factory injected.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/gpu/node';
import type { GpuContext } from '../../src/gpu/context';
import { unzipFolder } from '../../src/lora/zip';
import type { CheckpointStorage } from '../../src/train/storage';
import { MemoryStorage } from '../../src/train/storage';
import { createHandlers } from '../../src/worker/handlers';
import type { EventOf, EventType, TrainConfig, WorkerEvent } from '../../src/worker/protocol';
import { fixture, hasFixtures, NO_FIXTURES } from '../helpers/fixtures';
import { TINY_ROWS } from '../helpers/tiny-dataset';

const MODEL = 'models/stories260K-hf';

function modelFiles(): File[] {
  const dir = fixture(MODEL);
  return readdirSync(dir).map((n) => new File([readFileSync(join(dir, n))], n));
}

export const TINY_JSONL = TINY_ROWS.map(([prompt, completion]) =>
  JSON.stringify({ prompt, completion }),
).join('\n');

const CONFIG: TrainConfig = {
  r: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  target_modules: ['q_proj', 'v_proj'],
  learning_rate: 1e-2,
  num_train_epochs: 1,
  per_device_train_batch_size: 1,
  gradient_accumulation_steps: 1,
  lr_scheduler_type: 'constant',
  warmup_steps: 0,
  max_length: 32,
  max_steps: 3,
  eval_split: 0.25,
};

/** A view of `root` rooted at `dir`: what OPFS gives each run's folder, over one store that outlives a handler set. */
function under(root: MemoryStorage, dir: string): CheckpointStorage {
  const at = (p: string) => [dir, p].filter(Boolean).join('/');
  return {
    write: (p, d) => root.write(at(p), d),
    read: (p) => root.read(at(p)),
    append: (p, d) => root.append(at(p), d),
    list: (p) => root.list(at(p)),
    remove: (p) => root.remove(at(p)),
  };
}

if (!hasFixtures) console.warn(`worker handlers: ${NO_FIXTURES}`);

describe.skipIf(!hasFixtures)('worker handlers in Node', () => {
  const events: WorkerEvent[] = [];
  let ctx: Promise<GpuContext> | null = null;
  const acquire = () => (ctx ??= createNodeGpu());
  const storages = new Map<string, MemoryStorage>();
  const handlers = createHandlers((e) => events.push(e), acquire, {
    storage: async (dir) => {
      const s = new MemoryStorage();
      storages.set(dir, s);
      return s;
    },
  });
  afterAll(async () => (await ctx)?.destroy());

  const of = <K extends EventType>(type: K) => events.filter((e): e is EventOf<K> => e.type === type);
  const noErrors = () => expect(of('error')).toEqual([]);
  const dataset = { files: [new File([TINY_JSONL], 'tiny.jsonl')] };

  it('loads a dropped model folder with the dataset, and reports both', async () => {
    await handlers.load({
      type: 'load',
      id: 1,
      model: { kind: 'files', files: modelFiles() },
      dataset,
      config: CONFIG,
    });
    noErrors();
    const [loaded] = of('loaded');
    expect(loaded.model).toMatchObject({ architecture: 'llama', layers: 5 });
    expect(loaded.trainableLine).toMatch(
      /^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: /,
    );
    expect(loaded.dataset).toMatchObject({
      format: 'prompt-completion',
      rowsUsed: 8,
      trainExamples: 6,
      evalExamples: 2,
    });
  });

  it('trains, streaming metrics, and pauses / resumes from the checkpoint', async () => {
    const pending = handlers.start({ type: 'start', id: 2, config: CONFIG, dataset });
    // Pause as soon as the first step is in.
    await expect.poll(() => of('metrics').length, { timeout: 60_000 }).toBeGreaterThan(0);
    const runId = of('started')[0].runId;
    await handlers.pause({ type: 'pause', id: 3, runId });
    await pending;
    noErrors();
    expect(of('done').at(-1)).toMatchObject({ runId, reason: 'paused' });
    const pausedAt = of('done').at(-1)!.steps;
    await expect.poll(() => of('checkpoint').map((c) => c.step)).toContain(pausedAt);
    expect(await storages.get(`runs/${runId}`)!.list('')).toContain(`checkpoint-${pausedAt}`);

    await handlers.resume({ type: 'resume', id: 4, runId });
    noErrors();
    expect(of('done').at(-1)).toMatchObject({ runId, reason: 'finished', steps: 3 });
    // The resumed session continues where the checkpoint left off: one series, no step twice.
    expect(of('metrics').map((m) => m.point.step)).toEqual([1, 2, 3]);
    for (const m of of('metrics')) expect(Number.isFinite(m.point.loss)).toBe(true);
  });

  it('evaluates base vs tuned and exports the adapter and the merged model', async () => {
    const runId = of('started')[0].runId;
    await handlers.evaluate({ type: 'evaluate', id: 5, runId, maxNewTokens: 4 });
    const [ev] = of('evaluated');
    if (!ev.result.ok) throw new Error(ev.result.error.message);
    expect(ev.result.value).toMatchObject({ split: 'eval', examples: 2 });
    expect(ev.result.value.loss).toBeGreaterThan(0);
    expect(ev.result.value.baseLoss).toBeGreaterThan(0);
    expect(typeof ev.result.value.tuned).toBe('string');

    await handlers.export({ type: 'export', id: 6, runId, what: 'adapter' });
    await handlers.export({ type: 'export', id: 7, runId, what: 'merged' });
    noErrors();
    const [adapter, merged] = of('exported');
    expect(adapter.files.map((f) => f.name)).toEqual(
      expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors', 'README.md']),
    );
    const zip = unzipFolder(new Uint8Array(adapter.files[0].data));
    expect(adapter.files[0].name).toMatch(/\.zip$/);
    expect(zip.files.map((f) => f.name)).toContain('adapter_config.json');
    expect(merged.files.map((f) => f.name)).toEqual(
      expect.arrayContaining(['config.json', 'model.safetensors']),
    );
  });

  it('moves a run to a new device when the device is lost, resuming from the checkpoint', async () => {
    const lostEvents: WorkerEvent[] = [];
    let current = null as GpuContext | null;
    const acquireFresh = async () => (current = await createNodeGpu());
    const h = createHandlers((e) => lostEvents.push(e), acquireFresh, {
      storage: async () => new MemoryStorage(),
    });
    const config = { ...CONFIG, max_steps: 4 };
    await h.load({ type: 'load', id: 1, model: { kind: 'files', files: modelFiles() }, dataset, config });
    const pending = h.start({ type: 'start', id: 2, config, dataset });
    // Lose the device once the first checkpoint exists.
    await expect
      .poll(() => lostEvents.filter((e) => e.type === 'metrics').length, { timeout: 60_000 })
      .toBeGreaterThan(0);
    const first = current!;
    const runId = lostEvents.find((e): e is EventOf<'started'> => e.type === 'started')!.runId;
    await h.pause({ type: 'pause', id: 3, runId });
    await pending;
    const resumed = h.resume({ type: 'resume', id: 4, runId });
    await expect
      .poll(() => lostEvents.filter((e) => e.type === 'metrics').length, { timeout: 60_000 })
      .toBeGreaterThan(1);
    first.device.destroy();
    await resumed;
    const errors = lostEvents.filter((e) => e.type === 'error');
    expect(errors).toEqual([]);
    expect(lostEvents.some((e) => e.type === 'advice' && /lost.*new device/.test(e.message))).toBe(true);
    expect(lostEvents.filter((e) => e.type === 'done').at(-1)).toMatchObject({
      reason: 'finished',
      steps: 4,
    });
    expect(current).not.toBe(first);
    current?.destroy();
  });

  it('lists a saved run after a reload and resumes it to the same adapter as an uninterrupted run', async () => {
    const browser = new MemoryStorage();
    const config = { ...CONFIG, max_steps: 4 };
    const load = (h: ReturnType<typeof createHandlers>, files = dataset.files) =>
      h.load({
        type: 'load',
        id: 1,
        model: { kind: 'files', files: modelFiles() },
        dataset: { files },
        config,
      });
    const page = (onEvent: (e: WorkerEvent) => void = () => {}) => {
      const evs: WorkerEvent[] = [];
      const emit = (e: WorkerEvent) => {
        evs.push(e);
        onEvent(e);
      };
      const h = createHandlers(emit, acquire, { storage: async (dir) => under(browser, dir) });
      const get = <K extends EventType>(type: K) => evs.filter((e): e is EventOf<K> => e.type === type);
      return { h, evs, get };
    };

    // First page: 2 of 4 steps, paused right after step 2 (the metrics event comes before the trainer checks).
    const a = page((e) => {
      if (e.type === 'metrics' && e.point.step === 2)
        void a.h.pause({ type: 'pause', id: 3, runId: e.runId });
    });
    await load(a.h);
    await a.h.start({ type: 'start', id: 2, config, dataset });
    const runId = a.get('started')[0].runId;
    expect(a.get('done').at(-1)).toMatchObject({ runId, reason: 'paused', steps: 2 });
    expect(a.get('error')).toEqual([]);
    expect(a.get('metrics').map((m) => m.point.step)).toEqual([1, 2]);

    // Reload: new handlers, the same browser storage.
    const b = page();
    await b.h.listRuns({ type: 'listRuns', id: 1 });
    const [listed] = b.get('runs');
    if (!listed.result.ok) throw new Error(listed.result.error.message);
    expect(listed.result.value).toEqual([
      {
        runId,
        model: 'local-model',
        dataset: { name: 'tiny.jsonl', size: TINY_JSONL.length },
        step: 2,
        totalSteps: 4,
        createdAt: expect.any(String),
      },
    ]);
    // Another dataset file: refused, saying what to load.
    await load(b.h);
    const other = new File([TINY_JSONL + '\n'], 'tiny.jsonl');
    await b.h.resume({ type: 'resume', id: 2, runId, dataset: { files: [other] } });
    expect(b.get('error').at(-1)).toMatchObject({
      id: 2,
      runId,
      error: {
        code: 'bad-request',
        advice: expect.stringMatching(/^Load local-model and the dataset tiny\.jsonl/),
      },
    });
    await b.h.resume({ type: 'resume', id: 3, runId, dataset });
    expect(b.get('error')).toHaveLength(1);
    expect(b.get('started').at(-1)).toMatchObject({
      id: 3,
      runId,
      step: 2,
      totalSteps: 4,
      resumedFrom: 'checkpoint-2',
    });
    expect(b.get('done').at(-1)).toMatchObject({ runId, reason: 'finished', steps: 4 });
    expect(b.get('metrics').map((m) => m.point.step)).toEqual([3, 4]);
    await b.h.export({ type: 'export', id: 4, runId, what: 'adapter' });

    // The same 4 steps without a break, on the same page.
    await b.h.start({ type: 'start', id: 5, config, dataset });
    const straight = b.get('started').at(-1)!.runId;
    expect(b.get('done').at(-1)).toMatchObject({ runId: straight, reason: 'finished', steps: 4 });
    await b.h.export({ type: 'export', id: 6, runId: straight, what: 'adapter' });
    expect(b.get('error')).toHaveLength(1);
    const weights = (runId: string) =>
      new Uint8Array(
        b
          .get('exported')
          .find((e) => e.runId === runId)!
          .files.find((f) => f.name === 'adapter_model.safetensors')!.data,
      );
    // NOTE: bit-identical, not close: the checkpoint holds the exact adapter, optimizer state and data order.
    expect(weights(runId)).toEqual(weights(straight));

    await b.h.deleteRun({ type: 'deleteRun', id: 7, runId });
    const left = b.get('runs').at(-1)!;
    expect(left.result.ok && left.result.value.map((r) => r.runId)).toEqual([straight]);
    expect(await browser.list(`runs/${runId}`)).toEqual([]);
  });

  it('answers commands for an unknown run with a readable error', async () => {
    await handlers.stop({ type: 'stop', id: 8, runId: 'nope' });
    expect(of('error').at(-1)).toMatchObject({ id: 8, error: { code: 'no-run' } });
  });
});
