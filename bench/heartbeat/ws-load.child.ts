/**
 * Load generator of the heartbeat benchmark (a child process, pinned by the orchestrator):
 * N real `ws` node connections, registered one by one, then heartbeats on an OPEN-LOOP
 * schedule — message i is due at t0 + i/rate and goes to node i mod N, so the aggregate rate
 * is spread evenly over the nodes and over time, and a slow gateway does not slow the offered
 * load down (it shows up as queueing, shedding or error frames instead).
 *
 * Commands (IPC): register {url, token, count, concurrency, maxJobs?} · start {rate, burst?} ·
 * stop · counters · close · round (one heartbeat from every node now) · probe {index, cpu} (one
 * extra heartbeat from node `index` now; every heartbeat of that node carries this cpu figure
 * until `release {index}` puts it back on the scheduled figures).
 *
 * `burst`: the same average rate, but every node at once — a round of N heartbeats (one per
 * node) every N/rate seconds, sent in one tick (a heartbeat storm).
 */
import WebSocket from 'ws';
import { serveIpc } from '../lib/ipc.ts';
import { benchNodeId, heartbeatFrame, heartbeatLoad, registerBody } from '../lib/node-messages.ts';
import { FixedHistogram, type HistogramData } from '../lib/stats.ts';

/** A socket with more than this unsent is not written to (counted as dropped). */
const MAX_BUFFERED_BYTES = 1 << 20;
/** At most this much schedule (ms) is sent in one tick, so replies and closes are still read. */
const MAX_CATCH_UP_MS = 50;
const LATENESS_BOUNDS_MS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

interface NodeConn {
  id: string;
  index: number;
  ws: WebSocket;
  /** Heartbeats sent so far. */
  k: number;
  lastTs: number;
  /** Set by `probe`: the cpu figure every heartbeat of this node carries until `release`. */
  cpuOverride: number | null;
  awaitingAck: { resolve: () => void; reject: (e: Error) => void } | null;
}

export interface LoadCounters {
  at: number;
  /** Heartbeats sent, probes included. */
  sent: number;
  /** Of which probe heartbeats (sent outside the schedule). */
  probes: number;
  /** Not sent: the socket was not open. */
  notOpen: number;
  /** Not sent: more than 1 MiB already buffered on the socket (the gateway stopped reading). */
  dropped: number;
  errorFrames: Record<string, number>;
  otherFrames: Record<string, number>;
  closes: Record<string, number>;
  /** How late each heartbeat left versus its schedule, ms. */
  lateness: HistogramData;
}

const conns: NodeConn[] = [];
const errorFrames: Record<string, number> = {};
const otherFrames: Record<string, number> = {};
const closes: Record<string, number> = {};
const lateness = new FixedHistogram(LATENESS_BOUNDS_MS);
let sent = 0;
let probes = 0;
let notOpen = 0;
let dropped = 0;
let closing = false;

let run: { rate: number; burst: boolean; t0: number; seq: number; timer: NodeJS.Timeout | null } | null =
  null;
/** max_concurrent_jobs of the nodes registered next (null: the frozen body's). */
let registerMaxJobs: number | null = null;

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

function onFrame(conn: NodeConn, data: WebSocket.RawData): void {
  let frame: { type?: unknown; code?: unknown; message?: unknown };
  try {
    const text = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    frame = JSON.parse(text.toString('utf8')) as typeof frame;
  } catch {
    bump(otherFrames, 'invalid_json');
    return;
  }
  if (frame.type === 'error') {
    bump(errorFrames, String(frame.code));
    if (conn.awaitingAck) {
      conn.awaitingAck.reject(
        new Error(`${conn.id}: register refused: ${String(frame.code)} ${String(frame.message)}`),
      );
      conn.awaitingAck = null;
    }
  } else if (frame.type === 'node_register_ack' && conn.awaitingAck) {
    conn.awaitingAck.resolve();
    conn.awaitingAck = null;
  } else {
    bump(otherFrames, String(frame.type));
  }
}

async function connectAndRegister(url: string, token: string, index: number): Promise<NodeConn> {
  const ws = new WebSocket(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    perMessageDeflate: false,
  });
  const conn: NodeConn = {
    id: benchNodeId(index),
    index,
    ws,
    k: 0,
    lastTs: 0,
    cpuOverride: null,
    awaitingAck: null,
  };
  ws.on('message', (data) => onFrame(conn, data));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)),
    );
  });
  ws.on('error', () => undefined);
  ws.on('close', (code) => {
    if (!closing) bump(closes, String(code));
    conn.awaitingAck?.reject(new Error(`${conn.id}: closed (${code}) before the register ack`));
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${conn.id}: no node_register_ack within 30 s`)), 30_000);
    conn.awaitingAck = {
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    };
    const overrides = registerMaxJobs === null ? {} : { max_concurrent_jobs: registerMaxJobs };
    ws.send(JSON.stringify({ type: 'node_register', ...registerBody(conn.id, overrides) }));
  });
  return conn;
}

async function register(url: string, token: string, count: number, concurrency: number) {
  const started = performance.now();
  let next = conns.length;
  const end = conns.length + count;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < end) {
        const index = next++;
        try {
          conns.push(await connectAndRegister(url, token, index));
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    }),
  );
  conns.sort((a, b) => a.index - b.index);
  return {
    registered: conns.length,
    failures: failures.slice(0, 5),
    failed: failures.length,
    ms: performance.now() - started,
  };
}

function tick(): void {
  if (!run) return;
  const r = run;
  const now = performance.now();
  const wall = Date.now();
  const interval = 1000 / r.rate;
  const n = conns.length;
  // Burst: whole rounds of n (one per node), due together; at most one round per tick.
  const due = r.burst
    ? Math.min((Math.floor((now - r.t0) / (interval * n)) + 1) * n, r.seq - (r.seq % n) + n)
    : Math.min(Math.floor((now - r.t0) / interval) + 1, r.seq + Math.ceil(MAX_CATCH_UP_MS / interval));
  for (; r.seq < due; r.seq++) {
    const conn = conns[r.seq % n]!;
    lateness.observe(now - (r.t0 + (r.burst ? r.seq - (r.seq % n) : r.seq) * interval));
    if (conn.ws.readyState !== WebSocket.OPEN) {
      notOpen++;
      continue;
    }
    if (conn.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      dropped++;
      continue;
    }
    sendHeartbeat(conn, wall);
  }
  r.timer = setTimeout(tick, 1);
}

function sendHeartbeat(conn: NodeConn, wall: number): void {
  conn.k++;
  conn.lastTs = Math.max(wall, conn.lastTs + 1);
  const load = heartbeatLoad(conn.index, conn.k);
  if (conn.cpuOverride !== null) load.cpu = conn.cpuOverride;
  conn.ws.send(heartbeatFrame(conn.id, conn.index, conn.k, conn.lastTs, load));
  sent++;
}

function probe(index: number, cpu: number): void {
  const conn = conns[index];
  if (!conn) throw new Error(`no node ${index}`);
  if (conn.ws.readyState !== WebSocket.OPEN) throw new Error(`${conn.id}: socket not open`);
  conn.cpuOverride = cpu;
  sendHeartbeat(conn, Date.now());
  probes++;
}

function counters(): LoadCounters {
  return {
    at: performance.now(),
    sent,
    probes,
    notOpen,
    dropped,
    errorFrames: { ...errorFrames },
    otherFrames: { ...otherFrames },
    closes: { ...closes },
    lateness: lateness.toData(),
  };
}

function stop(): void {
  if (run?.timer) clearTimeout(run.timer);
  run = null;
}

serveIpc(async (cmd, msg) => {
  switch (cmd) {
    case 'register':
      registerMaxJobs = typeof msg['maxJobs'] === 'number' ? msg['maxJobs'] : null;
      return register(
        String(msg['url']),
        typeof msg['token'] === 'string' ? msg['token'] : '',
        Number(msg['count']),
        Number(msg['concurrency']),
      );
    case 'start': {
      if (conns.length === 0) throw new Error('no registered node to send from');
      stop();
      run = {
        rate: Number(msg['rate']),
        burst: msg['burst'] === true,
        t0: performance.now(),
        seq: 0,
        timer: null,
      };
      tick();
      return counters();
    }
    case 'stop':
      stop();
      return counters();
    case 'counters':
      return counters();
    case 'round': {
      const wall = Date.now();
      let notSent = 0;
      for (const conn of conns) {
        if (conn.ws.readyState === WebSocket.OPEN) sendHeartbeat(conn, wall);
        else notSent++;
      }
      return { sent: conns.length - notSent, notSent };
    }
    case 'probe':
      probe(Number(msg['index']), Number(msg['cpu']));
      return {};
    case 'release': {
      const conn = conns[Number(msg['index'])];
      if (conn) conn.cpuOverride = null;
      return {};
    }
    case 'close': {
      stop();
      closing = true;
      await Promise.all(
        conns.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.ws.readyState === WebSocket.CLOSED) return resolve();
              const timer = setTimeout(() => {
                c.ws.terminate();
                resolve();
              }, 3000);
              c.ws.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
              c.ws.close(1000, 'benchmark done');
            }),
        ),
      );
      return { closed: conns.length };
    }
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});
