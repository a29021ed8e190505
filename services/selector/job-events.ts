import type { Request, Response } from 'express';
import { SwitchboardError, toSwitchboardError } from '../../shared/errors.ts';
import type { JobView } from '../../shared/protocol/client-messages.ts';
import type { JobStore } from './job-store.ts';

const TERMINAL = new Set(['finished', 'failed']);
const KEEPALIVE_MS = 10_000;

export interface JobEventsOptions {
  jobs: JobStore;
  isClosing: () => boolean;
  /** How often the job record and its partials are read. */
  pollMs?: number;
}

/**
 * `GET /v1/jobs/:job_id/events`: the job as Server-Sent Events (PROTOCOL.md "Client HTTP"):
 * `status` on every status change ({status, attempt_id, node_id}), `partial` for every
 * asr_partial of the current attempt in arrival order ({text, is_final, at}; the SSE id is its
 * stream id), then `result` with the terminal job record, and the stream ends. Unknown job: 404.
 */
export async function streamJobEvents(req: Request, res: Response, opts: JobEventsOptions): Promise<void> {
  const id = String(req.params['id']);
  const pollMs = opts.pollMs ?? 100;
  let view: JobView | null = await opts.jobs.view(id);
  if (!view) throw new SwitchboardError('NOT_FOUND', `no job ${id}`);
  res.status(200).set({
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  let open = true;
  req.on('close', () => (open = false));
  const send = (event: string, data: unknown, eventId?: string) => {
    res.write(`${eventId ? `id: ${eventId}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  let lastStatus = '';
  let lastPartial = '-';
  let lastAttempt: number | null = null;
  let quietSince = Date.now();
  try {
    while (open && view) {
      if (view.attempt_id !== lastAttempt) {
        lastAttempt = view.attempt_id; // a failover starts the partials again
        lastPartial = '-';
      }
      for (const entry of await opts.jobs.partialEntries(id, view.attempt_id, lastPartial)) {
        send('partial', entry.partial, entry.id);
        lastPartial = entry.id;
        quietSince = Date.now();
      }
      const status = `${view.status}|${view.attempt_id}`;
      if (status !== lastStatus) {
        lastStatus = status;
        send('status', { status: view.status, attempt_id: view.attempt_id, node_id: view.node_id });
        quietSince = Date.now();
      }
      if (TERMINAL.has(view.status)) {
        send('result', view);
        break;
      }
      if (opts.isClosing()) break;
      if (Date.now() - quietSince > KEEPALIVE_MS) {
        res.write(': keepalive\n\n');
        quietSince = Date.now();
      }
      await new Promise((r) => setTimeout(r, pollMs));
      view = await opts.jobs.view(id);
    }
  } catch (err) {
    const error = toSwitchboardError(err);
    if (open) send('error', { code: error.code, message: error.message });
  }
  res.end();
}
