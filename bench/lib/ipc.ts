/**
 * Request/response and events between the orchestrator and a benchmark child process, over
 * Node's IPC channel (the child is spawned with `ipc: true`). A child exits when its parent
 * goes away (the channel disconnects), so no load generator outlives a crashed orchestrator.
 */
import type { ChildProcess } from 'node:child_process';

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

interface EventMessage {
  ev: string;
  data?: unknown;
}

/** Parent side. */
export class IpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Set<(data: unknown) => void>>();

  constructor(
    private readonly child: ChildProcess,
    private readonly label: string,
  ) {
    child.on('message', (msg: Reply | EventMessage) => {
      if ('ev' in msg) {
        for (const listener of this.listeners.get(msg.ev) ?? []) listener(msg.data);
        return;
      }
      const waiter = this.pending.get(msg.id);
      if (!waiter) return;
      this.pending.delete(msg.id);
      if (msg.ok) waiter.resolve(msg.result);
      else waiter.reject(new Error(`${label}: ${msg.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`${label} exited (code ${code}, signal ${signal}) with a request pending`));
      }
      this.pending.clear();
    });
  }

  request<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  /** Resolves with the data of the next `ev` event. */
  once<T>(ev: string, timeoutMs = 60_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const set = this.listeners.get(ev) ?? new Set();
      this.listeners.set(ev, set);
      const timer = setTimeout(() => {
        set.delete(listener);
        reject(new Error(`${this.label}: no ${ev} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (data: unknown): void => {
        clearTimeout(timer);
        set.delete(listener);
        resolve(data as T);
      };
      set.add(listener);
    });
  }
}

export type Handler = (cmd: string, msg: Record<string, unknown>) => Promise<unknown>;

/** Child side: answers each request with `handler`'s result or error. */
export function serveIpc(handler: Handler): void {
  if (!process.send) {
    console.error('this is a benchmark child process: start it through `npm run bench`');
    process.exit(2);
  }
  process.on('message', (msg: { id: number; cmd: string } & Record<string, unknown>) => {
    handler(msg.cmd, msg).then(
      (result) => process.send?.({ id: msg.id, ok: true, result } satisfies Reply),
      (err: unknown) =>
        process.send?.({
          id: msg.id,
          ok: false,
          error: err instanceof Error ? err.message : String(err),
        } satisfies Reply),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Child side: an event to the parent. */
export function emit(ev: string, data?: unknown): void {
  process.send?.({ ev, data } satisfies EventMessage);
}
