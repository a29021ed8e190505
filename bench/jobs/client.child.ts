/**
 * Job client of the jobs scenario (a child process, pinned by the orchestrator): `POST
 * /v1/jobs` on an OPEN-LOOP schedule — job i is due at t0 + i/rate, whatever the answers so
 * far — then, for each 201, long-polls `GET /v1/jobs/:id?wait_ms=` until the job is finished or
 * failed (again if a poll ends first). POSTs and GETs use separate keep-alive pools, so a POST
 * never waits behind long-polls.
 *
 * Each job is stamped with epochNow() (performance.timeOrigin + performance.now(), epoch ms at
 * sub-ms resolution; the fleet stamps job_assign with the same clock) when its POST is handed
 * to node:http (`sentAt`), and when the GET that returned it finished or failed has been read
 * (`seenAt`). The job record's own timestamps (Date.now() in the services, ms) come with it.
 *
 * Jobs scheduled in [t0 + warm-up, t0 + warm-up + duration) are measured; the client emits
 * `window-start` / `window-end` at those instants (the orchestrator samples CPU and metrics
 * then) and sends nothing after the window. Commands (IPC): start {url, apiKey, rate, warmupS,
 * durationS, runId, waitMs, giveUpMs, getSockets} · finish (waits until every measured job is resolved or
 * given up; returns their records) · clock · loop · stop.
 */
import http from 'node:http';
import { emit, serveIpc } from '../lib/ipc.ts';
import { summarize, type SampleSummary } from '../lib/stats.ts';
import { JOB_MIX } from './job-mix.ts';
import { monitorLoopDelay } from './loop-delay.ts';
import { epochNow, type ClockReading } from './services.ts';

const MAX_CATCH_UP_MS = 50;
const POST_SOCKETS = 128;
const POST_TIMEOUT_MS = 30_000;

export interface JobRecord {
  id: string;
  kind: number;
  /** epochNow() when the POST was handed to node:http. */
  sentAt: number;
  /** sentAt − its scheduled instant (ms): how late the open-loop sender was. */
  lateMs: number;
  /** HTTP status of the POST; 0 = transport error. */
  postStatus: number;
  /** sentAt → POST response read (ms). */
  postMs: number | null;
  /** `reservation_conflicts` of the POST's answer (201 or 503). */
  conflicts: number;
  /** Transport error, 503 message or unexpected body of the POST. */
  postError: string | null;
  /** 201 only: terminal status seen, or `unresolved` (given up). */
  final: 'finished' | 'failed' | 'unresolved' | null;
  /** epochNow() when the terminal status had been read. */
  seenAt: number | null;
  /** GET requests made for the job. */
  polls: number;
  /** The job record's timestamps (services' Date.now(), epoch ms). */
  created: number | null;
  dispatched: number | null;
  accepted: number | null;
  started: number | null;
  finished: number | null;
  attempts: number;
  errorCode: string | null;
}

export interface ClientTotals {
  sent: number;
  measured: number;
  /** Measured jobs still open when `finish` returned. */
  unresolved: number;
  getsTotal: number;
  getsInFlightMax: number;
  /** GETs answered before the job ended (wait_ms ran out): re-polled. */
  getsNotTerminal: number;
  /** Per GET (whole run): waiting for one of the pool's sockets / on the socket until answered. */
  getQueuedMs: SampleSummary | null;
  getServedMs: SampleSummary | null;
  getErrors: number;
  firstGetError: string | null;
  windowS: number;
}

interface JobView {
  status: string;
  attempts?: unknown[];
  created_at?: number;
  dispatched_at?: number;
  accepted_at?: number;
  started_at?: number;
  finished_at?: number;
  error?: { code?: string };
}

interface Run {
  url: URL;
  auth: string;
  rate: number;
  runId: string;
  waitMs: number;
  giveUpMs: number;
  t0: number;
  windowStart: number;
  windowEnd: number;
  seq: number;
  timer: NodeJS.Timeout | null;
  postAgent: http.Agent;
  getAgent: http.Agent;
}

let run: Run | null = null;
const measured: JobRecord[] = [];
let open = 0;
let onResolved: (() => void) | null = null;
const totals = {
  sent: 0,
  getsTotal: 0,
  getsInFlight: 0,
  getsInFlightMax: 0,
  getsNotTerminal: 0,
  getErrors: 0,
};
/** Every GET of the run (warm-up included): waiting for a pooled socket, then on it (ms). */
const getQueued: number[] = [];
const getServed: number[] = [];
let firstGetError: string | null = null;
const loopDelay = monitorLoopDelay();

function request(
  r: Run,
  agent: http.Agent,
  method: 'GET' | 'POST',
  path: string,
  body: string | null,
  timeoutMs: number,
): Promise<{ status: number; text: string; queuedMs: number; servedMs: number }> {
  return new Promise((resolve, reject) => {
    const created = performance.now();
    let assigned = created;
    const headers: http.OutgoingHttpHeaders = { authorization: r.auth };
    if (body !== null) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request(
      { agent, host: r.url.hostname, port: r.url.port, path, method, headers, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            queuedMs: assigned - created,
            servedMs: performance.now() - assigned,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('socket', () => (assigned = performance.now()));
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

function resolved(rec: JobRecord | null): void {
  if (!rec) return;
  open--;
  if (open === 0) onResolved?.();
}

async function poll(r: Run, rec: JobRecord | null, id: string, sentAt: number): Promise<void> {
  for (;;) {
    totals.getsTotal++;
    totals.getsInFlight++;
    totals.getsInFlightMax = Math.max(totals.getsInFlightMax, totals.getsInFlight);
    if (rec) rec.polls++;
    let view: JobView | null = null;
    try {
      const res = await request(
        r,
        r.getAgent,
        'GET',
        `/v1/jobs/${id}?wait_ms=${r.waitMs}`,
        null,
        r.waitMs + 10_000,
      );
      getQueued.push(res.queuedMs);
      getServed.push(res.servedMs);
      if (res.status === 200) view = JSON.parse(res.text) as JobView;
      else throw new Error(`HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    } catch (err) {
      totals.getErrors++;
      firstGetError ??= (err as Error).message;
    } finally {
      totals.getsInFlight--;
    }
    const now = epochNow();
    if (view && (view.status === 'finished' || view.status === 'failed')) {
      if (rec) {
        rec.final = view.status;
        rec.seenAt = now;
        rec.created = view.created_at ?? null;
        rec.dispatched = view.dispatched_at ?? null;
        rec.accepted = view.accepted_at ?? null;
        rec.started = view.started_at ?? null;
        rec.finished = view.finished_at ?? null;
        rec.attempts = view.attempts?.length ?? 0;
        rec.errorCode = view.error?.code ?? null;
      }
      return resolved(rec);
    }
    if (view) totals.getsNotTerminal++;
    if (now - sentAt > r.giveUpMs) {
      if (rec) rec.final = 'unresolved';
      return resolved(rec);
    }
    if (!view) await new Promise((res) => setTimeout(res, 100));
  }
}

function send(r: Run, seq: number, scheduledAt: number): void {
  const kind = seq % JOB_MIX.length;
  const mix = JOB_MIX[kind]!;
  const id = `${r.runId}-${seq}`;
  const body = JSON.stringify({
    job_id: id,
    src_lang: mix.src,
    tgt_lang: mix.tgt,
    payload: { session_id: `s-${seq % 500}`, utterance_index: seq },
  });
  const inWindow = scheduledAt >= r.windowStart && scheduledAt < r.windowEnd;
  const sentAt = epochNow();
  const rec: JobRecord | null = inWindow
    ? {
        id,
        kind,
        sentAt,
        lateMs: performance.now() - scheduledAt,
        postStatus: 0,
        postMs: null,
        conflicts: 0,
        postError: null,
        final: null,
        seenAt: null,
        polls: 0,
        created: null,
        dispatched: null,
        accepted: null,
        started: null,
        finished: null,
        attempts: 0,
        errorCode: null,
      }
    : null;
  if (rec) {
    measured.push(rec);
    open++;
  }
  totals.sent++;
  void request(r, r.postAgent, 'POST', '/v1/jobs', body, POST_TIMEOUT_MS).then(
    (res) => {
      let parsed: { reservation_conflicts?: number; error?: { message?: string } } = {};
      try {
        parsed = JSON.parse(res.text) as typeof parsed;
      } catch {
        if (rec) rec.postError = `unparsable body: ${res.text.slice(0, 200)}`;
      }
      if (rec) {
        rec.postStatus = res.status;
        rec.postMs = epochNow() - sentAt;
        rec.conflicts = parsed.reservation_conflicts ?? 0;
        if (res.status !== 201) rec.postError ??= parsed.error?.message ?? res.text.slice(0, 200);
      }
      if (res.status === 201) return poll(r, rec, id, sentAt);
      resolved(rec);
    },
    (err: Error) => {
      if (rec) {
        rec.postError = err.message;
        rec.postMs = epochNow() - sentAt;
      }
      resolved(rec);
    },
  );
}

function tick(): void {
  if (!run) return;
  const r = run;
  const now = performance.now();
  const interval = 1000 / r.rate;
  const due = Math.min(
    Math.floor((Math.min(now, r.windowEnd) - r.t0) / interval) + 1,
    r.seq + Math.ceil(MAX_CATCH_UP_MS / interval),
  );
  for (; r.seq < due; r.seq++) {
    const at = r.t0 + r.seq * interval;
    if (at >= r.windowEnd) break;
    send(r, r.seq, at);
  }
  if (r.t0 + r.seq * interval >= r.windowEnd) {
    r.timer = null;
    return;
  }
  r.timer = setTimeout(tick, 1);
}

serveIpc(async (cmd, msg) => {
  switch (cmd) {
    case 'start': {
      if (run) throw new Error('already started');
      const t0 = performance.now();
      const windowStart = t0 + Number(msg['warmupS']) * 1000;
      const windowEnd = windowStart + Number(msg['durationS']) * 1000;
      const r: Run = {
        url: new URL(String(msg['url'])),
        auth: `Bearer ${String(msg['apiKey'])}`,
        rate: Number(msg['rate']),
        runId: String(msg['runId']),
        waitMs: Number(msg['waitMs']),
        giveUpMs: Number(msg['giveUpMs']),
        t0,
        windowStart,
        windowEnd,
        seq: 0,
        timer: null,
        postAgent: new http.Agent({
          keepAlive: true,
          maxSockets: POST_SOCKETS,
          maxFreeSockets: POST_SOCKETS,
        }),
        getAgent: new http.Agent({
          keepAlive: true,
          maxSockets: Number(msg['getSockets']),
          maxFreeSockets: Number(msg['getSockets']),
        }),
      };
      run = r;
      setTimeout(() => emit('window-start'), windowStart - t0);
      setTimeout(() => emit('window-end'), windowEnd - t0);
      tick();
      return { t0: epochNow() };
    }
    case 'finish': {
      const r = run;
      if (!r) throw new Error('not started');
      const deadline = Number(msg['deadlineMs']);
      while (performance.now() < r.windowEnd) await new Promise((res) => setTimeout(res, 50));
      if (open > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, deadline);
          onResolved = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      for (const rec of measured) {
        if (rec.postStatus === 201 && rec.final === null) rec.final = 'unresolved';
        if (rec.postMs === null && rec.postError === null) rec.postError = 'no answer by the deadline';
      }
      const result: { records: JobRecord[]; totals: ClientTotals } = {
        records: measured,
        totals: {
          sent: totals.sent,
          measured: measured.length,
          unresolved: open,
          getsTotal: totals.getsTotal,
          getsInFlightMax: totals.getsInFlightMax,
          getsNotTerminal: totals.getsNotTerminal,
          getQueuedMs: getQueued.length ? summarize(getQueued) : null,
          getServedMs: getServed.length ? summarize(getServed) : null,
          getErrors: totals.getErrors,
          firstGetError,
          windowS: (r.windowEnd - r.windowStart) / 1000,
        },
      };
      return result;
    }
    case 'clock':
      return { hr: epochNow(), wall: Date.now() } satisfies ClockReading;
    case 'loop':
      return loopDelay();
    case 'stop':
      if (run?.timer) clearTimeout(run.timer);
      run?.postAgent.destroy();
      run?.getAgent.destroy();
      return null;
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});
