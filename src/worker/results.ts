// What a trained run gives back: evaluate (base vs tuned) and export (the adapter zip, or the merged model).
import { mergeModelFromSource } from '../lora/merge-model';
import { zipFolder } from '../lora/zip';
import { evaluateAdapter } from './preview';
import type { CommandOf, ExportedFile } from './protocol';
import type { WorkerSession } from './session';
import { errorValue, StudioError } from './session';
import { safeName } from './setup';

export const evaluate = (s: WorkerSession, cmd: CommandOf<'evaluate'>) =>
  s.withRun(cmd, ['paused', 'ended'], async (r) => {
    const l = s.loaded;
    const session = r.session;
    const prepared = s.prepared;
    if (!l || !session || !prepared)
      throw new StudioError('no-run', 'This run has no adapter yet.', 'Train at least one step first.');
    s.claim('evaluating');
    try {
      const value = await evaluateAdapter({
        ctx: l.ctx,
        model: l.model,
        adapter: session.adapter,
        tok: l.tok,
        evalSet: prepared.data.eval,
        trainSet: prepared.data.train,
        batchSize: Math.min(r.config.per_device_train_batch_size, 8),
        padId: l.tok?.eosId ?? 0,
        prompt: cmd.prompt,
        maxNewTokens: cmd.maxNewTokens ?? 24,
      });
      s.emit({ type: 'evaluated', id: cmd.id, runId: r.runId, result: { ok: true, value } });
    } catch (e) {
      s.emit({ type: 'evaluated', id: cmd.id, runId: r.runId, result: { ok: false, error: errorValue(e) } });
    } finally {
      s.busy = null;
    }
  });

export const exportFiles = (s: WorkerSession, cmd: CommandOf<'export'>) =>
  s.withRun(cmd, ['paused', 'ended'], async (r) => {
    const session = r.session;
    if (!session) throw new StudioError('no-run', 'This run has no adapter yet.');
    const loaded = s.loaded;
    const folder = `${safeName(loaded?.baseModel.split('/').pop() ?? 'model')}-lora`;
    let files: ExportedFile[];
    if (cmd.what === 'adapter') {
      const zip = zipFolder(folder, session.files);
      files = [
        { name: `${folder}.zip`, data: owned(zip) },
        ...session.files.map((f) => ({ name: f.name, data: copied(f.data) })),
      ];
    } else {
      if (!loaded) throw new StudioError('no-model', 'The base model is not loaded any more.');
      s.emit({ type: 'progress', runId: r.runId, phase: 'merge', done: 0, total: 1 });
      const merged = await mergeModelFromSource(loaded.source, session.adapter);
      s.emit({ type: 'progress', runId: r.runId, phase: 'merge', done: 1, total: 1 });
      files = merged.map((f) => ({ name: f.name, data: owned(f.data) }));
    }
    s.emit(
      { type: 'exported', id: cmd.id, runId: r.runId, what: cmd.what, files },
      files.map((f) => f.data),
    );
  });

/** An ArrayBuffer holding exactly these bytes, safe to transfer (a view of a bigger or shared buffer is copied). */
function owned(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer)
    return b.buffer;
  return b.slice().buffer as ArrayBuffer;
}

/** A copy: the run keeps its own files for the next export. */
function copied(b: Uint8Array): ArrayBuffer {
  return b.slice().buffer as ArrayBuffer;
}
