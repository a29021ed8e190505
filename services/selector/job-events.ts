import type { Request, Response } from 'express';
import { SwitchboardError, toSwitchboardError } from '../../shared/errors.ts';
import type { JobView } from '../../shared/protocol/client-messages.ts';
import type { JobEvents } from '../../shared/store/job-events.ts';
import type { JobReadStore } from '../../shared/store/job-reads.ts';

const TERMINAL = new Set(['finished', 'failed']);
const KEEPALIVE_MS = 10_000;

export interface JobEventsOptions {
  jobs: JobReadStore;
  /** Wakes the stream when the job's shard announces a change of it. */
  events: JobEvents;
  isClosing: () => boolean;
  /** Only this tenant's job (another tenant's answers 404); undefined = any (admin, auth off). */
  tenant?: string;
}

/**
 * `GET /v1/jobs/:job_id/events`: the job as Server-Sent Events (PROTOCOL.md "Client HTTP"):
 * `status` on every status change ({status, attempt_id, node_id}), `partial` for every
 * asr_partial of the current attempt in arrival order ({text, is_final, at}; the SSE id is its
 * stream id), then `result` with the terminal job record, and the stream ends. Unknown job: 404.
 * Pushed, not polled: the stream re-reads the job when its shard announces a change of it (or its
 * shard was subscribed again, or SB_JOB_EVENTS_FALLBACK_MS passed), never on a timer of its own.
 */
export async function streamJobEvents(req: Request, res: Response, opts: JobEventsOptions): Promise<void> {
  const id = String(req.params['id']);
  // watching BEFORE the first read: a change announced between the read and the wait is kept
  const watch = opts.events.watch(id);
  let view: JobView | null;
  try {
    view = await opts.jobs.view(id, opts.tenant);
  } catch (err) {
    watch.close();
    throw err;
  }
  if (!view) {
    watch.close();
    throw new SwitchboardError('NOT_FOUND', `no job ${id}`);
  }
  res.status(200).set({
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  let open = true;
  res.on('close', () => {
    open = false;
    watch.close();
  });
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
      if (Date.now() - quietSince >= KEEPALIVE_MS) {
        res.write(': keepalive\n\n');
        quietSince = Date.now();
      }
      if ((await watch.next(KEEPALIVE_MS - (Date.now() - quietSince))) === 'closed' && !open) break;
      view = await opts.jobs.view(id, opts.tenant);
    }
  } catch (err) {
    const error = toSwitchboardError(err);
    if (open) send('error', { code: error.code, message: error.message });
  } finally {
    watch.close();
  }
  res.end();
}
