/**
 * Job client of the selector benchmark (a child process, pinned by the orchestrator):
 * `POST /v1/jobs` on an OPEN-LOOP schedule — request i is due at t0 + i/rate, whatever the
 * answers so far — over HTTP/1.1 keep-alive with a bounded pool of `connections` sockets, one
 * request at a time per socket; requests due while every socket is busy wait in a FIFO, and
 * that wait counts.
 *
 * The HTTP client is a minimal one on raw sockets (a request is one write; a response is read
 * up to its Content-Length, which the selector always sends): at 1,000 requests/s node:http
 * cost ~15 % of a core, this ~4 times less, so the instrument stays small next to the selector.
 *
 * Latency is measured per request from its SCHEDULED time to the end of the response (so a
 * slow selector or a full pool shows up as latency, not as a lower rate), and also from the
 * moment it was queued. The body of a 201 gives the selector's own `selection_us` and
 * `reservation_conflicts`.
 *
 * Backlog cap: at most 2 s of the offered rate in flight (waiting for a socket included). A
 * request due beyond it is not sent and counted as such: an overloaded system then shows
 * refusals and bounded latency instead of an ever-growing queue that outlives the window.
 *
 * Commands (IPC): start {url, apiKey, rate, connections} · window-start · window-end (stops
 * recording, waits for the window's requests, returns its WindowStats) · stop (waits for every
 * request in flight) · counters.
 */
import net from 'node:net';
import { serveIpc } from '../lib/ipc.ts';
import { summarize, type SampleSummary } from '../lib/stats.ts';
import { JOB_KINDS } from './job-kinds.ts';

const MAX_CATCH_UP_MS = 50;
const REQUEST_TIMEOUT_MS = 30_000;
const WINDOW_END_DEADLINE_MS = 35_000;

export interface WindowStats {
  /** Requests scheduled in the window. */
  scheduled: number;
  /** Of which answered (any status) / failed at the transport (reset, timeout). */
  answered: number;
  transportErrors: number;
  firstTransportError: string | null;
  /** By HTTP status. */
  statuses: Record<string, number>;
  /** Sum of `reservation_conflicts` over the 201 bodies, and the 201s that had any. */
  reservationConflicts: number;
  placedAfterConflict: number;
  /** First 503 message of the window. */
  first503: string | null;
  /** Due but not sent: 2 s of requests were already in flight. */
  notSent: number;
  seconds: number;
  /** Scheduled → response end, ms (every answered request). */
  latencyMs: SampleSummary | null;
  /** Handed to the agent → response end, ms. */
  serviceMs: SampleSummary | null;
  /** Only the 201s, scheduled → response end, ms. */
  placedLatencyMs: SampleSummary | null;
  /** The selector's selection_us of each 201 (exact, per request). */
  selectionUs: SampleSummary | null;
  /** How late requests were handed to the agent versus their schedule, ms. */
  latenessMs: SampleSummary | null;
  /**
   * The slowest answer (scheduled → end, ms) per second of the window, by scheduled time: one
   * stall (GC, a descheduled process) shows up as one bad second, steady queueing as many.
   */
  maxMsBySecond: number[];
}

class Samples {
  private data = new Float64Array(4096);
  length = 0;

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  summary(): SampleSummary | null {
    return this.length ? summarize(this.data.subarray(0, this.length)) : null;
  }
}

class Window {
  readonly startedAt = performance.now();
  endedAt = 0;
  scheduled = 0;
  answered = 0;
  transportErrors = 0;
  firstTransportError: string | null = null;
  statuses: Record<string, number> = {};
  reservationConflicts = 0;
  placedAfterConflict = 0;
  first503: string | null = null;
  notSent = 0;
  readonly maxBySecond: number[] = [];
  readonly latency = new Samples();
  readonly service = new Samples();
  readonly placed = new Samples();
  readonly selection = new Samples();
  readonly lateness = new Samples();
  pending = 0;
  open = true;
  onSettled: (() => void) | null = null;

  settle(): void {
    if (!this.open && this.pending === 0) this.onSettled?.();
  }

  stats(): WindowStats {
    return {
      scheduled: this.scheduled,
      answered: this.answered,
      transportErrors: this.transportErrors,
      firstTransportError: this.firstTransportError,
      statuses: this.statuses,
      reservationConflicts: this.reservationConflicts,
      placedAfterConflict: this.placedAfterConflict,
      first503: this.first503,
      notSent: this.notSent,
      seconds: ((this.endedAt || performance.now()) - this.startedAt) / 1000,
      latencyMs: this.latency.summary(),
      serviceMs: this.service.summary(),
      placedLatencyMs: this.placed.summary(),
      selectionUs: this.selection.summary(),
      latenessMs: this.lateness.summary(),
      maxMsBySecond: Array.from(this.maxBySecond, (v) => Math.round((v ?? 0) * 10) / 10),
    };
  }
}

interface Run {
  host: string;
  port: number;
  /** Request head up to (not including) the Content-Length value. */
  head: string;
  rate: number;
  t0: number;
  seq: number;
  timer: NodeJS.Timeout | null;
  conns: Conn[];
  sweeper: NodeJS.Timeout | null;
}

interface Pending {
  bytes: Buffer;
  scheduledAt: number;
  queuedAt: number;
  startedAt: number;
  w: Window | null;
}

let run: Run | null = null;
let window: Window | null = null;
let inFlight = 0;
let sent = 0;
let answered = 0;
let notSent = 0;
let onIdle: (() => void) | null = null;

/** Requests waiting for a free socket (FIFO; `head` is the next one). */
let waiting: Pending[] = [];
let head = 0;
const idle: Conn[] = [];

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection: one request at a time, the response read up to Content-Length. */
class Conn {
  private socket: net.Socket;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private bodyAt = -1;
  private need = -1;
  private status = 0;
  busy: Pending | null = null;

  constructor(private readonly r: Run) {
    this.socket = this.connect();
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.r.host, port: this.r.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose());
    return socket;
  }

  start(p: Pending): void {
    this.busy = p;
    p.startedAt = performance.now();
    this.socket.write(p.bytes);
  }

  /** Ends a request that took too long: the socket goes, the request fails, a new socket comes. */
  expire(now: number): void {
    if (this.busy && now - this.busy.startedAt > REQUEST_TIMEOUT_MS) this.socket.destroy();
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.destroy();
  }

  private onClose(): void {
    const p = this.busy;
    this.busy = null;
    this.reset();
    if (p) failed(p, 'connection closed before the response');
    if (run !== this.r) return;
    this.socket = this.connect();
    if (!idle.includes(this)) idle.push(this);
    dispatch();
  }

  private reset(): void {
    this.chunks = [];
    this.buffered = 0;
    this.bodyAt = -1;
    this.need = -1;
    this.status = 0;
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    let buf = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks);
    if (this.chunks.length > 1) this.chunks = [buf];
    if (this.bodyAt < 0) {
      const end = buf.indexOf(HEADER_END);
      if (end < 0) return;
      const header = buf.toString('latin1', 0, end);
      this.status = Number(header.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(header);
      if (!length) {
        this.socket.destroy(); // chunked or close-delimited: not what the selector sends
        return;
      }
      this.bodyAt = end + 4;
      this.need = this.bodyAt + Number(length[1]);
    }
    if (this.buffered < this.need) return;
    buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const body = buf.toString('utf8', this.bodyAt, this.need);
    const status = this.status;
    const p = this.busy;
    this.busy = null;
    this.reset();
    if (p) answeredWith(p, status, body);
    idle.push(this);
    dispatch();
  }
}

function dispatch(): void {
  while (idle.length > 0 && head < waiting.length) {
    const p = waiting[head]!;
    waiting[head++] = undefined as unknown as Pending;
    idle.pop()!.start(p);
  }
  if (head > 4096 && head * 2 > waiting.length) {
    waiting = waiting.slice(head);
    head = 0;
  }
}

/** Once per request, whatever ends it. */
function finish(w: Window | null): void {
  inFlight--;
  answered++;
  if (inFlight === 0) onIdle?.();
  if (w) {
    w.pending--;
    w.settle();
  }
}

function failed(p: Pending, message: string): void {
  const w = p.w;
  if (w) {
    w.transportErrors++;
    w.firstTransportError ??= message;
  }
  finish(w);
}

const SELECTION_US = /"selection_us":(\d+)/;
const CONFLICTS = /"reservation_conflicts":(\d+)/;
const MESSAGE = /"message":"((?:[^"\\]|\\.)*)"/;

function answeredWith(p: Pending, status: number, body: string): void {
  const w = p.w;
  if (w) {
    const end = performance.now();
    const latency = end - p.scheduledAt;
    w.answered++;
    bump(w.statuses, String(status));
    w.latency.push(latency);
    w.service.push(end - p.queuedAt);
    const second = Math.max(0, Math.floor((p.scheduledAt - w.startedAt) / 1000));
    w.maxBySecond[second] = Math.max(w.maxBySecond[second] ?? 0, latency);
    const conflicts = Number(CONFLICTS.exec(body)?.[1] ?? 0);
    w.reservationConflicts += conflicts;
    if (status === 201) {
      w.placed.push(latency);
      const us = SELECTION_US.exec(body);
      if (us) w.selection.push(Number(us[1]));
      if (conflicts > 0) w.placedAfterConflict++;
    } else if (status === 503) {
      w.first503 ??= MESSAGE.exec(body)?.[1] ?? body.slice(0, 200);
    }
  }
  finish(w);
}

function send(r: Run, seq: number, scheduledAt: number): void {
  const kind = JOB_KINDS[seq % JOB_KINDS.length]!;
  const body = JSON.stringify({
    ...kind.body(seq),
    payload: {
      session_id: `bench-${seq % 500}`,
      utterance_index: seq,
      audio_format: 'pcm16',
      sample_rate: 16000,
    },
  });
  const w = window;
  const queuedAt = performance.now();
  if (w) {
    w.scheduled++;
    w.pending++;
    w.lateness.push(queuedAt - scheduledAt);
  }
  inFlight++;
  sent++;
  const bytes = Buffer.from(`${r.head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
  waiting.push({ bytes, scheduledAt, queuedAt, startedAt: 0, w });
  dispatch();
}

function tick(): void {
  if (!run) return;
  const r = run;
  const now = performance.now();
  const interval = 1000 / r.rate;
  const due = Math.min(
    Math.floor((now - r.t0) / interval) + 1,
    r.seq + Math.ceil(MAX_CATCH_UP_MS / interval),
  );
  const cap = Math.max(100, 2 * r.rate);
  for (; r.seq < due; r.seq++) {
    if (inFlight >= cap) {
      notSent++;
      if (window) {
        window.scheduled++;
        window.notSent++;
      }
      continue;
    }
    send(r, r.seq, r.t0 + r.seq * interval);
  }
  r.timer = setTimeout(tick, 1);
}

function stopSending(): void {
  if (run?.timer) clearTimeout(run.timer);
  if (run) run.timer = null;
}

function counters() {
  return { at: performance.now(), sent, answered, inFlight, notSent };
}

serveIpc(async (cmd, msg) => {
  switch (cmd) {
    case 'start': {
      if (run) throw new Error('already started');
      const url = new URL(String(msg['url']));
      const r: Run = {
        host: url.hostname,
        port: Number(url.port),
        head:
          `POST /v1/jobs HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${String(msg['apiKey'])}\r\n` +
          'Content-Type: application/json\r\nContent-Length: ',
        rate: Number(msg['rate']),
        t0: performance.now(),
        seq: 0,
        timer: null,
        conns: [],
        sweeper: null,
      };
      run = r;
      for (let i = 0; i < Number(msg['connections']); i++) {
        const conn = new Conn(r);
        r.conns.push(conn);
        idle.push(conn);
      }
      r.sweeper = setInterval(() => {
        const now = performance.now();
        for (const conn of r.conns) conn.expire(now);
      }, 1000);
      tick();
      return counters();
    }
    case 'window-start':
      if (window?.open) throw new Error('a window is already open');
      window = new Window();
      return counters();
    case 'window-end': {
      const w = window;
      if (!w?.open) throw new Error('no open window');
      w.open = false;
      w.endedAt = performance.now();
      window = null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, WINDOW_END_DEADLINE_MS);
        w.onSettled = () => {
          clearTimeout(timer);
          resolve();
        };
        w.settle();
      });
      return w.stats();
    }
    case 'stop': {
      stopSending();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, WINDOW_END_DEADLINE_MS);
          onIdle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      const r = run;
      run = null;
      if (r?.sweeper) clearInterval(r.sweeper);
      for (const conn of r?.conns ?? []) conn.close();
      idle.length = 0;
      return counters();
    }
    case 'counters':
      return counters();
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});
