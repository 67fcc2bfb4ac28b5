// Connects command handlers to a message port (the worker's global scope): validate, dispatch, never throw across.
import type { GpuContext } from '../gpu/context';
import type { HandlerOptions } from './handlers';
import { createHandlers } from './handlers';
import type { WorkerEvent } from './protocol';
import { dispatchCommand, isWorkerCommand, requestIdOf, toErrorValue } from './protocol';

/** The part of a DedicatedWorkerGlobalScope (or a MessagePort) this needs. */
export interface Port {
  postMessage(message: WorkerEvent, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent<unknown>) => void): void;
}

export function serve(port: Port, acquire: () => Promise<GpuContext>, options: HandlerOptions = {}): void {
  const emit = (ev: WorkerEvent, transfer: Transferable[] = []) => port.postMessage(ev, transfer);
  const handlers = createHandlers(emit, acquire, options);
  port.addEventListener('message', (ev) => {
    const msg = ev.data;
    if (!isWorkerCommand(msg)) {
      emit({
        type: 'error',
        id: requestIdOf(msg),
        runId: null,
        error: { code: 'bad-request', message: `Unknown command: ${JSON.stringify(msg)?.slice(0, 200)}` },
      });
      return;
    }
    Promise.resolve()
      .then(() => dispatchCommand(handlers, msg))
      .catch((e: unknown) => emit({ type: 'error', id: msg.id, runId: null, error: toErrorValue(e) }));
  });
}
