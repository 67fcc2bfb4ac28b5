// The worker's command handlers: it owns the GPU device; the trainer commands answer "not built yet" for now.
import type { GpuContext } from '../gpu/context';
import type { CommandHandlers, CommandOf, ErrorValue, RunId, WorkerEvent } from './protocol';
import { toErrorValue } from './protocol';
import { runMatmulSelfTest } from './selftest';

export type Emit = (ev: WorkerEvent) => void;

const NOT_BUILT: ErrorValue = {
  code: 'not-implemented',
  message: 'The training engine is not part of this build yet.',
  advice: 'GPU info and the self-test work now; loading models and training arrive with the trainer.',
};

/**
 * Handlers for every command. `acquire` makes the GPU context (browser or Node); it is called once, on the
 * first command that needs the GPU, and again after the device is lost.
 */
export function createHandlers(emit: Emit, acquire: () => Promise<GpuContext>): CommandHandlers {
  let gpu: Promise<GpuContext> | null = null;

  const context = (): Promise<GpuContext> => {
    if (!gpu) {
      const pending = acquire();
      gpu = pending;
      pending.then(
        (ctx) =>
          void ctx.lost.then((info) => {
            gpu = null;
            emit({
              type: 'error',
              id: null,
              runId: null,
              error: {
                code: 'device-lost',
                message: `The GPU device was lost (${info.reason}): ${info.message}`,
                advice: 'A new device is requested on the next command.',
              },
            });
          }),
        // A failed acquisition is retried on the next command (the user may have enabled WebGPU meanwhile).
        () => {
          gpu = null;
        },
      );
    }
    return gpu;
  };

  const notBuilt = (cmd: { id: number; runId?: RunId }) =>
    emit({ type: 'error', id: cmd.id, runId: cmd.runId ?? null, error: NOT_BUILT });

  return {
    async gpuInfo(cmd: CommandOf<'gpuInfo'>) {
      try {
        const ctx = await context();
        emit({ type: 'gpuInfo', id: cmd.id, result: { ok: true, value: ctx.report } });
      } catch (e) {
        emit({ type: 'gpuInfo', id: cmd.id, result: { ok: false, error: toErrorValue(e) } });
      }
    },
    async selfTest(cmd) {
      try {
        const ctx = await context();
        const value = await runMatmulSelfTest(ctx);
        emit({ type: 'selfTest', id: cmd.id, result: { ok: true, value } });
      } catch (e) {
        emit({ type: 'selfTest', id: cmd.id, result: { ok: false, error: toErrorValue(e) } });
      }
    },
    load: notBuilt,
    start: notBuilt,
    pause: notBuilt,
    resume: notBuilt,
    stop: notBuilt,
    evaluate: notBuilt,
    export: notBuilt,
  };
}
