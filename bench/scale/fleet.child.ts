/**
 * The scale scenario's fleet (a child process; the orchestrator runs two): simulated nodes over
 * the gateway's HTTP node API on keep-alive connections, so one process drives tens of
 * thousands of nodes without a socket each. Nodes are numbered; this process owns the ones it
 * registered and keeps their node tokens.
 *
 * Commands (IPC): register {url, token, from, count, concurrency} (join token, then one healthy
 * heartbeat each) · storm {from, count, concurrency} (re-register with the node token, then a
 * heartbeat: a reconnect; shed requests tried again, counted in `shed`) · start {rate} (open-loop heartbeats over this process's nodes) ·
 * stop (waits for those in flight; tallies and latency) · tokens {from, count} ([index, node
 * token] of those it holds, for the WebSocket storm) · stats.
 */
import http from 'node:http';
import { serveIpc } from '../lib/ipc.ts';
import { benchNodeId, heartbeatFrame, registerBody } from '../lib/node-messages.ts';
import { summarize, type SampleSummary } from '../lib/stats.ts';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
/** How long a storming node keeps trying a shed request. */
const STORM_RETRY_MS = 60_000;
let base: URL | null = null;
const tokens = new Map<number, string>();
const beats = new Map<number, number>();

interface Reply {
  status: number;
  body: string;
}

function post(path: string, bearer: string, body: string): Promise<Reply> {
  const url = base;
  if (!url) return Promise.reject(new Error('no gateway url: register first'));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        headers: {
          authorization: `Bearer ${bearer}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `node_heartbeat` without `type` (the HTTP body), its k-th load figures. */
function heartbeatBody(i: number): string {
  const k = (beats.get(i) ?? 0) + 1;
  beats.set(i, k);
  return heartbeatFrame(benchNodeId(i), i, k, Date.now()).replace('"type":"node_heartbeat",', '');
}

async function heartbeat(i: number): Promise<number> {
  const token = tokens.get(i);
  if (!token) return -1;
  const id = benchNodeId(i);
  return (await post(`/v1/nodes/${id}/heartbeat`, token, heartbeatBody(i))).status;
}

async function register(i: number, bearer: string): Promise<number> {
  const reply = await post('/v1/nodes/register', bearer, JSON.stringify(registerBody(benchNodeId(i))));
  if (reply.status === 201) tokens.set(i, (JSON.parse(reply.body) as { node_token: string }).node_token);
  return reply.status;
}

/** Runs `fn` over [from, from+count) with at most `concurrency` in flight; tallies statuses. */
async function each(
  from: number,
  count: number,
  concurrency: number,
  fn: (i: number) => Promise<number[]>,
): Promise<{ statuses: Record<string, number>; ms: number; lastDoneMs: number }> {
  const statuses: Record<string, number> = {};
  const started = performance.now();
  let next = from;
  const end = from + count;
  const lane = async () => {
    while (next < end) {
      const i = next++;
      let codes: number[];
      try {
        codes = await fn(i);
      } catch {
        codes = [0];
      }
      for (const c of codes) statuses[c] = (statuses[c] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  const ms = performance.now() - started;
  return { statuses, ms, lastDoneMs: ms };
}

// --- open-loop heartbeats ---------------------------------------------------------------------
let loop: NodeJS.Timeout | null = null;
let owned: number[] = [];
const hb = {
  sent: 0,
  dropped: 0,
  inflight: 0,
  statuses: {} as Record<string, number>,
  latencies: [] as number[],
};
const MAX_INFLIGHT = 1024;
const MAX_SAMPLES = 200_000;

function startHeartbeats(rate: number): void {
  owned = [...tokens.keys()];
  Object.assign(hb, { sent: 0, dropped: 0, inflight: 0, statuses: {}, latencies: [] });
  const t0 = performance.now();
  let due = 0;
  let cursor = 0;
  loop = setInterval(() => {
    const target = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; due < target; due++) {
      if (hb.inflight >= MAX_INFLIGHT) {
        hb.dropped++;
        continue;
      }
      const i = owned[cursor++ % owned.length]!;
      hb.sent++;
      hb.inflight++;
      const at = performance.now();
      void heartbeat(i)
        .catch(() => 0)
        .then((status) => {
          hb.inflight--;
          hb.statuses[status] = (hb.statuses[status] ?? 0) + 1;
          if (hb.latencies.length < MAX_SAMPLES) hb.latencies.push(performance.now() - at);
        });
    }
  }, 5);
}

async function stopHeartbeats(): Promise<{
  sent: number;
  dropped: number;
  statuses: Record<string, number>;
  latencyMs: SampleSummary | null;
}> {
  if (loop) clearInterval(loop);
  loop = null;
  const deadline = performance.now() + 30_000;
  while (hb.inflight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const sorted = Float64Array.from(hb.latencies).sort();
  return {
    sent: hb.sent,
    dropped: hb.dropped,
    statuses: hb.statuses,
    latencyMs: sorted.length ? summarize(sorted) : null,
  };
}

serveIpc(async (cmd, msg) => {
  switch (cmd) {
    case 'register': {
      base = new URL(String(msg['url']));
      const join = String(msg['token']);
      return each(Number(msg['from']), Number(msg['count']), Number(msg['concurrency']), async (i) => {
        const r = await register(i, join);
        return r === 201 ? [r, await heartbeat(i)] : [r];
      });
    }
    case 'storm': {
      // a reconnect: the node proves itself with its token, registers again, heartbeats; a shed
      // request (429, 503: Retry-After 1) is tried again a second later, as a client should
      const deadline = performance.now() + STORM_RETRY_MS;
      const shed: Record<string, number> = {};
      const retried = async (send: () => Promise<number>): Promise<number> => {
        for (;;) {
          const status = await send();
          if ((status !== 429 && status !== 503) || performance.now() > deadline) return status;
          shed[status] = (shed[status] ?? 0) + 1;
          await new Promise((r) => setTimeout(r, 1000 * (0.5 + Math.random())));
        }
      };
      const result = await each(
        Number(msg['from']),
        Number(msg['count']),
        Number(msg['concurrency']),
        async (i) => {
          const token = tokens.get(i);
          if (!token) return [-1];
          const r = await retried(() => register(i, token));
          return r === 201 ? [r, await retried(() => heartbeat(i))] : [r];
        },
      );
      return { ...result, shed };
    }
    case 'start':
      startHeartbeats(Number(msg['rate']));
      return { nodes: tokens.size };
    case 'stop':
      return stopHeartbeats();
    case 'tokens': {
      const out: [number, string][] = [];
      const from = Number(msg['from']);
      for (let i = from; i < from + Number(msg['count']); i++) {
        const token = tokens.get(i);
        if (token) out.push([i, token]);
      }
      return { nodes: out };
    }
    case 'stats':
      return { nodes: tokens.size, rssBytes: process.memoryUsage().rss };
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});
