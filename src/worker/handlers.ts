// The worker's command handlers: one typed entry per command, each delegating to its family's module.
import type { GpuContext } from '../gpu/context';
import { load } from './load';
import type { CommandHandlers } from './protocol';
import { toErrorValue } from './protocol';
import { evaluate, exportFiles } from './results';
import { deleteRun, listRuns, pause, resume, start, stop } from './run';
import { runMatmulSelfTest } from './selftest';
import type { Emit, HandlerOptions } from './session';
import { WorkerSession } from './session';

export type { Emit, HandlerOptions } from './session';

/**
 * Handlers for every command. `acquire` makes the GPU context (browser or Node); it is called on the first command
 * that needs the GPU, and again after the device is lost.
 */
export function createHandlers(
  emit: Emit,
  acquire: () => Promise<GpuContext>,
  options: HandlerOptions = {},
): CommandHandlers {
  const s = new WorkerSession(emit, acquire, options);
  return {
    async gpuInfo(cmd) {
      try {
        const ctx = await s.context();
        emit({ type: 'gpuInfo', id: cmd.id, result: { ok: true, value: ctx.report } });
      } catch (e) {
        emit({ type: 'gpuInfo', id: cmd.id, result: { ok: false, error: toErrorValue(e) } });
      }
    },
    async selfTest(cmd) {
      try {
        const ctx = await s.context();
        const value = await runMatmulSelfTest(ctx);
        emit({ type: 'selfTest', id: cmd.id, result: { ok: true, value } });
      } catch (e) {
        emit({ type: 'selfTest', id: cmd.id, result: { ok: false, error: toErrorValue(e) } });
      }
    },
    load: (cmd) => load(s, cmd),
    start: (cmd) => start(s, cmd),
    pause: (cmd) => pause(s, cmd),
    resume: (cmd) => resume(s, cmd),
    stop: (cmd) => stop(s, cmd),
    listRuns: (cmd) => listRuns(s, cmd),
    deleteRun: (cmd) => deleteRun(s, cmd),
    evaluate: (cmd) => evaluate(s, cmd),
    export: (cmd) => exportFiles(s, cmd),
  };
}
