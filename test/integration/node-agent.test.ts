import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { FleetSimulator } from '../../agent/fleet-simulator.ts';
import type { JobHandler } from '../../agent/job-runner.ts';
import { NodeAgent, type NodeAgentOptions } from '../../agent/node-agent.ts';
import type { HeartbeatParts, JobAssign, RegistrationBody } from '../../agent/protocol.ts';
import { simulatedHandler, sleep } from '../../agent/simulated-job.ts';
import { backoffDelay, TimerQueue, withJitter } from '../../agent/timers.ts';
import { registerBody } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import {
  inspectClient,
  JOIN_TOKEN,
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';
import type { Frame } from '../support/ws-client.ts';

const usage = (): HeartbeatParts => ({
  resource_usage: { cpu_percent: 20, gpu_percent: 30, gpu_mem_percent: 40, mem_percent: 50 },
});

const registration = (nodeId: string | null): RegistrationBody =>
  registerBody({ node_id: nodeId ?? undefined }) as RegistrationBody;

/** A started agent with test defaults. */
function startAgent(opts: Partial<NodeAgentOptions> & Pick<NodeAgentOptions, 'gatewayUrls'>): NodeAgent {
  const a = new NodeAgent({
    token: JOIN_TOKEN,
    registration: registration(null),
    heartbeat: usage,
    backoff: { baseMs: 20, maxMs: 200 },
    shutdownGraceMs: 1000,
    ...opts,
  });
  a.start();
  return a;
}

/** Agents a test started; stopped after each test whatever happened. */
const agents: NodeAgent[] = [];
function agent(opts: Partial<NodeAgentOptions> & Pick<NodeAgentOptions, 'gatewayUrls'>): NodeAgent {
  const a = startAgent(opts);
  agents.push(a);
  return a;
}
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop(0)));
});

/** The arguments of the next `name` event of `a` (for which `match` holds). */
function nextEvent(
  a: NodeAgent,
  name: 'registered' | 'stopped',
  match: (arg: unknown) => boolean = () => true,
): Promise<unknown[]> {
  return new Promise((resolve) => {
    const listener = (...args: unknown[]) => {
      if (!match(args[0])) return;
      a.off(name, listener);
      resolve(args);
    };
    a.on(name, listener);
  });
}

describe('NodeAgent against a real gateway', () => {
  let gw: TestGateway;
  let redis: Redis | Cluster;
  let seq = 0;
  const nextId = () => `agent-node-${++seq}`;
  const status = (id: string) => redis.hget(gw.keys.forNode(id).node(id), 'status');

  beforeAll(async () => {
    gw = await startTestGateway(uniquePrefix('agent'), { redisUrl: redisUrl() });
    redis = inspectClient(gw.config);
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  it('registers with the join token and becomes ready in Redis', async () => {
    const id = nextId();
    const a = agent({ gatewayUrls: [gw.ws], registration: registration(id) });
    await waitFor(async () => (await status(id)) === 'ready');
    expect(a.nodeId).toBe(id);
    expect(a.registered).toBe(true);
    expect(a.connected).toBe(true);
    expect(a.stats).toMatchObject({ connects: 1, registrations: 1, errors: {} });
    expect(a.stats.heartbeats).toBeGreaterThanOrEqual(1);
    expect(await redis.hmget(gw.keys.forNode(id).node(id), 'cpu', 'gpu_pct', 'mem', 'running')).toEqual([
      '20',
      '30',
      '50',
      '0',
    ]);
  });

  it('heartbeats on its interval with strictly increasing timestamps the gateway applies', async () => {
    const id = nextId();
    const a = agent({ gatewayUrls: [gw.ws], registration: registration(id), heartbeatIntervalMs: 100 });
    const beats: { timestamp: number; at: number }[] = [];
    a.on('heartbeat', ({ timestamp }) => beats.push({ timestamp, at: performance.now() }));
    await waitFor(() => beats.length >= 8, { timeoutMs: 5000 });
    const stamps = beats.map((b) => b.timestamp);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]!).toBeGreaterThan(stamps[i - 1]!);
    const gaps = beats.slice(2).map((b, i) => b.at - beats[i + 1]!.at);
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
    expect(mean).toBeGreaterThan(70);
    expect(mean).toBeLessThan(250);
    const last = stamps[stamps.length - 1]!;
    await waitFor(async () => Number(await redis.hget(gw.keys.forNode(id).node(id), 'hb_ts')) >= last);
    expect(a.stats.errors).toEqual({});
  });

  it('moves to the next gateway URL when its gateway goes away, re-registering with the same id', async () => {
    const first = await startTestGateway(gw.config.prefix, { redisUrl: redisUrl() });
    let firstClosed = false;
    try {
      // No node_id: the gateway generates one; the agent keeps it (and its node token) from then on.
      const a = agent({ gatewayUrls: [first.ws, gw.ws], heartbeatIntervalMs: 100 });
      const [firstAck] = (await nextEvent(a, 'registered')) as [{ nodeId: string; url: string }];
      expect(firstAck.url).toBe(first.ws);
      const id = firstAck.nodeId;
      expect(id).toMatch(/^node-[0-9a-f]{8}$/);
      await waitFor(async () => (await status(id)) === 'ready');

      const again = nextEvent(a, 'registered');
      await first.close();
      firstClosed = true;
      const [ack] = (await again) as [{ nodeId: string; url: string; again: boolean }];
      expect(ack).toMatchObject({ nodeId: id, url: gw.ws, again: true });
      expect(a.gatewayUrl).toBe(gw.ws);
      expect(a.stats.disconnects).toBe(1);
      const hbTs = Number(await redis.hget(gw.keys.forNode(id).node(id), 'hb_ts'));
      await waitFor(async () => Number(await redis.hget(gw.keys.forNode(id).node(id), 'hb_ts')) > hbTs, {
        message: 'heartbeats through the second gateway',
      });
      expect(await status(id)).toBe('ready');
    } finally {
      if (!firstClosed) await first.close();
    }
  });

  it('re-registers when the gateway answers NOT_REGISTERED (node record deleted)', async () => {
    const id = nextId();
    const a = agent({ gatewayUrls: [gw.ws], registration: registration(id), heartbeatIntervalMs: 100 });
    await waitFor(async () => (await status(id)) === 'ready');
    await redis.del(gw.keys.forNode(id).node(id));
    await waitFor(() => a.stats.registrations === 2, { message: 'second registration' });
    expect(a.stats.errors['NOT_REGISTERED']).toBeGreaterThanOrEqual(1);
    expect(a.stats.connects).toBe(1); // on the same socket
    await waitFor(async () => (await status(id)) === 'ready');
  });

  it('stop() closes cleanly: the gateway marks the node offline at once and nothing reconnects', async () => {
    const id = nextId();
    const a = agent({ gatewayUrls: [gw.ws], registration: registration(id) });
    await waitFor(async () => (await status(id)) === 'ready');
    const stopped = nextEvent(a, 'stopped');
    await a.stop();
    await stopped;
    expect(a.lifecycle).toBe('stopped');
    expect(a.connected).toBe(false);
    expect(a.state).toBe('disconnected');
    await waitFor(async () => (await status(id)) === 'offline');
    expect(a.stats).toMatchObject({ connects: 1, disconnects: 1, registrations: 1 });
    await a.stop(); // idempotent
  });

  it('the fleet simulator brings up 50 nodes that all become ready, then stops them all', async () => {
    const prefix = `fleet${seq++}`;
    const lines: string[] = [];
    const fleet = new FleetSimulator({
      gatewayUrls: [gw.ws],
      token: JOIN_TOKEN,
      nodes: 50,
      idPrefix: prefix,
      heartbeatIntervalMs: 500,
      rampUpMs: 250,
      summaryIntervalMs: 200,
      print: (line) => lines.push(line),
      seed: 7,
    });
    const ids = fleet.agents.map((a) => a.nodeId!);
    expect(new Set(ids).size).toBe(50);
    try {
      await fleet.start();
      await waitFor(
        async () => {
          const pipeline = redis.pipeline();
          for (const id of ids) pipeline.hget(gw.keys.forNode(id).node(id), 'status');
          const statuses = ((await pipeline.exec()) ?? []).map(([, s]) => s);
          return statuses.every((s) => s === 'ready');
        },
        { timeoutMs: 15_000, message: 'all 50 ready' },
      );
      expect(fleet.registered).toBe(50);
      // capabilities differ by profile: the pools index several language pairs
      expect(new Set(fleet.shapes.map((shape) => shape.profile.name)).size).toBeGreaterThan(1);
      await waitFor(() => lines.some((l) => l.includes('nodes 50/50 registered')));
    } finally {
      await fleet.stop();
    }
    const s = fleet.summary();
    expect(s).toMatchObject({ nodes: 50, registered: 0, unregistered: 0, errors: {} });
    await waitFor(async () => (await status(ids[0]!)) === 'offline');
  });
});

// ---------------------------------------------------------------------------------------------
// The job path, against a tiny local gateway stand-in (a real `ws` server): the gateway's job
// delivery is not built yet, so frames are fed by hand.

class FakeConnection {
  readonly frames: Frame[] = [];
  readonly closed: Promise<number>;
  private waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];

  constructor(
    readonly ws: WebSocket,
    readonly authorization: string | undefined,
    onFrame: (conn: FakeConnection, f: Frame) => void,
  ) {
    ws.on('message', (data) => {
      const f = JSON.parse((data as Buffer).toString('utf8')) as Frame;
      this.frames.push(f);
      for (const w of this.waiters.filter((x) => x.match(f))) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(f);
      }
      onFrame(this, f);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  }

  send(body: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(body));
  }

  /** The first frame (seen or future) matching, without consuming it. */
  next(match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching frame in ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`)),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  ofJob(jobId: string): string[] {
    return this.frames.filter((f) => f['job_id'] === jobId).map((f) => f.type);
  }
}

class FakeGateway {
  readonly connections: FakeConnection[] = [];
  registers = 0;
  /** Answer to the n-th node_register (1-based; null = none); default: an ack. */
  onRegister: (n: number, f: Frame) => Record<string, unknown> | null = (_n, f) => ack(String(f['node_id']));
  private waiters: ((c: FakeConnection) => void)[] = [];

  private constructor(
    private readonly wss: WebSocketServer,
    readonly url: string,
  ) {
    wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
      const conn = new FakeConnection(ws, req.headers.authorization, (c, f) => {
        if (f.type !== 'node_register') return;
        const reply = this.onRegister(++this.registers, f);
        if (reply) c.send(reply);
      });
      this.connections.push(conn);
      for (const w of this.waiters.splice(0)) w(conn);
    });
  }

  static async start(): Promise<FakeGateway> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const address = wss.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return new FakeGateway(wss, `ws://127.0.0.1:${port}/ws/node`);
  }

  /** The n-th connection (1-based), once it exists. */
  async connection(n: number): Promise<FakeConnection> {
    await waitFor(() => this.connections.length >= n, { message: `connection ${n}` });
    return this.connections[n - 1]!;
  }

  /** The n-th connection once the agent registered on it. */
  async registered(n: number): Promise<FakeConnection> {
    const conn = await this.connection(n);
    await conn.next((f) => f.type === 'node_register');
    return conn;
  }

  close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

const ack = (nodeId: string): Record<string, unknown> => ({
  type: 'node_register_ack',
  node_id: nodeId,
  message: 'registered',
  status: 'registering',
  node_token: `node-token-of-${nodeId}`,
  heartbeat_interval_ms: 60_000,
  node_ttl_ms: 180_000,
});

let jobSeq = 0;
const assign = () => ({
  type: 'job_assign',
  job_id: `job-${++jobSeq}`,
  attempt_id: 1,
  session_id: 's1',
  utterance_index: 7,
  src_lang: 'zh',
  tgt_lang: 'en',
  dialect: null,
  pipeline: { use_asr: true, use_nmt: true, use_tts: false },
  trace_id: 'trace-1',
  audio: 'AAAA',
  audio_format: 'pcm16',
});

/** A handler whose jobs finish when the test says so. */
function controlledHandler() {
  const pending = new Map<
    string,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  const seen: { job: JobAssign; signal: AbortSignal }[] = [];
  const handler: JobHandler = (job, { signal, started }) => {
    seen.push({ job, signal });
    started();
    return new Promise((resolve, reject) => {
      pending.set(job.job_id, { resolve, reject });
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  };
  const finish = async (jobId: string, value: Record<string, unknown> | Error) => {
    await waitFor(() => pending.has(jobId), { message: `handler running ${jobId}` });
    const p = pending.get(jobId)!;
    if (value instanceof Error) p.reject(value);
    else p.resolve(value);
  };
  return { handler, seen, finish };
}

describe('NodeAgent job handling (local ws server)', () => {
  let fake: FakeGateway;
  beforeAll(async () => {
    fake = await FakeGateway.start();
  });
  afterAll(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop(0)));
    await fake.close();
  });

  it('acks at once, relays started, and sends the handler result with the job ids', async () => {
    const { handler, seen, finish } = controlledHandler();
    const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-1'), handler });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const job = assign();
    conn.send(job);
    await conn.next((f) => f.type === 'job_started' && f['job_id'] === job.job_id);
    expect(a.runningJobs).toBe(1);
    expect(seen[0]!.job).toMatchObject({ job_id: job.job_id, audio: 'AAAA', audio_format: 'pcm16' });

    await finish(job.job_id, { text_asr: '你好', text_translated: 'hello', job_id: 'spoofed' });
    const result = await conn.next((f) => f.type === 'job_result');
    expect(conn.ofJob(job.job_id)).toEqual(['job_ack', 'job_started', 'job_result']);
    const ids = {
      job_id: job.job_id,
      attempt_id: 1,
      node_id: 'node-jobs-1',
      session_id: 's1',
      trace_id: 'trace-1',
    };
    expect(conn.frames.find((f) => f.type === 'job_ack')).toEqual({ type: 'job_ack', ...ids });
    expect(result).toMatchObject({
      ...ids,
      success: true,
      utterance_index: 7,
      text_asr: '你好',
      text_translated: 'hello',
    });
    expect(result['processing_time_ms']).toEqual(expect.any(Number));
    expect(a.runningJobs).toBe(0);
    expect(a.stats.jobs).toMatchObject({ received: 1, succeeded: 1, failed: 0 });
  });

  it('a handler that throws yields success:false with the error code and message', async () => {
    const handler: JobHandler = () =>
      Promise.reject(Object.assign(new Error('model crashed'), { code: 'ASR_FAILED' }));
    const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-2'), handler });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const job = assign();
    conn.send(job);
    const result = await conn.next((f) => f.type === 'job_result');
    expect(result).toMatchObject({
      job_id: job.job_id,
      success: false,
      error: { code: 'ASR_FAILED', message: 'model crashed' },
    });
    expect(conn.ofJob(job.job_id)).toEqual(['job_ack', 'job_result']);
    expect(a.stats.jobs.failed).toBe(1);
  });

  it('job_cancel aborts the handler and no result is sent for that attempt', async () => {
    const { handler, seen, finish } = controlledHandler();
    const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-3'), handler });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const cancelled = assign();
    const later = assign();
    conn.send(cancelled);
    await conn.next((f) => f.type === 'job_started' && f['job_id'] === cancelled.job_id);
    conn.send({ type: 'job_cancel', job_id: cancelled.job_id, reason: 'ack timeout' });
    await waitFor(() => seen[0]!.signal.aborted);
    expect((seen[0]!.signal.reason as { code?: string }).code).toBe('JOB_CANCELLED');

    // frames are handled in order: once the later job's result is in, the cancelled one is settled
    conn.send(later);
    await finish(later.job_id, { text_asr: 'x' });
    await conn.next((f) => f.type === 'job_result' && f['job_id'] === later.job_id);
    expect(conn.ofJob(cancelled.job_id)).toEqual(['job_ack', 'job_started']);
    expect(a.runningJobs).toBe(0);
    expect(a.stats.jobs).toMatchObject({ cancelled: 1, succeeded: 1 });
  });

  it('acks a duplicate assignment again without running it twice, and declines jobs while draining', async () => {
    const { handler, seen, finish } = controlledHandler();
    const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-4'), handler });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const outcomes: string[] = [];
    a.on('job_assign', (job, outcome) => outcomes.push(`${job.job_id}:${outcome}`));
    const job = assign();
    conn.send(job);
    conn.send(job);
    conn.send({ type: 'node_control', command: 'drain', reason: 'maintenance' });
    const refused = assign();
    conn.send(refused);
    await waitFor(() => outcomes.length === 3);
    expect(outcomes).toEqual([
      `${job.job_id}:accepted`,
      `${job.job_id}:duplicate`,
      `${refused.job_id}:declined`,
    ]);
    expect(a.draining).toBe(true);
    expect(seen).toHaveLength(1);
    await finish(job.job_id, {});
    await conn.next((f) => f.type === 'job_result');
    expect(conn.ofJob(job.job_id)).toEqual(['job_ack', 'job_started', 'job_ack', 'job_result']);
    expect(conn.ofJob(refused.job_id)).toEqual([]);
  });

  it('reports running jobs in heartbeats, and keeps a result made while disconnected for the next registration', async () => {
    const { handler, finish } = controlledHandler();
    const id = 'node-jobs-5';
    const a = agent({
      gatewayUrls: [fake.url],
      registration: registration(id),
      handler,
      heartbeatIntervalMs: 50,
    });
    const n = fake.connections.length + 1;
    const conn = await fake.registered(n);
    await waitFor(() => a.registered);
    const job = assign();
    conn.send(job);
    await conn.next(
      (f) =>
        f.type === 'node_heartbeat' && (f['resource_usage'] as { running_jobs: number }).running_jobs === 1,
    );

    // the gateway drops the socket; the next one is not acked until the job has finished
    fake.onRegister = () => null;
    try {
      conn.ws.close(1001, 'going away');
      const next = await fake.registered(n + 1);
      expect(next.authorization).toBe(`Bearer node-token-of-${id}`); // the node token from the first ack
      await finish(job.job_id, { text_asr: 'late' });
      await waitFor(() => a.stats.jobs.succeeded === 1);
      expect(conn.ofJob(job.job_id)).toEqual(['job_ack', 'job_started']);
      expect(next.ofJob(job.job_id)).toEqual([]);

      next.send(ack(id));
      const result = await next.next((f) => f.type === 'job_result');
      expect(result).toMatchObject({ job_id: job.job_id, node_id: id, success: true, text_asr: 'late' });
      expect(a.stats.registrations).toBe(2);
    } finally {
      fake.onRegister = (_n, f) => ack(String(f['node_id']));
    }
  });

  it('retries a registration answered RATE_LIMITED, on the same socket', async () => {
    fake.registers = 0;
    fake.onRegister = (n, f) =>
      n === 1 ? { type: 'error', code: 'RATE_LIMITED', message: 'slow down' } : ack(String(f['node_id']));
    try {
      const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-6') });
      const conn = await fake.connection(fake.connections.length + 1);
      await waitFor(() => a.registered);
      expect(conn.frames.filter((f) => f.type === 'node_register')).toHaveLength(2);
      expect(a.stats).toMatchObject({ connects: 1, registrations: 1, errors: { RATE_LIMITED: 1 } });
    } finally {
      fake.onRegister = (_n, f) => ack(String(f['node_id']));
    }
  });

  it('node_control shutdown stops the agent, closing with 1000; a job still running gets a failure result', async () => {
    const handler: JobHandler = async (_job, { signal, started }) => {
      started();
      await sleep(60_000, signal);
      return {};
    };
    const a = agent({
      gatewayUrls: [fake.url],
      registration: registration('node-jobs-7'),
      handler,
      shutdownGraceMs: 100,
    });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const job = assign();
    conn.send(job);
    await conn.next((f) => f.type === 'job_started');
    const stopped = nextEvent(a, 'stopped');
    conn.send({ type: 'node_control', command: 'shutdown', reason: 'test' });
    await stopped;
    expect(await conn.closed).toBe(1000);
    expect(await conn.next((f) => f.type === 'job_result')).toMatchObject({
      job_id: job.job_id,
      success: false,
      error: { code: 'NODE_SHUTTING_DOWN' },
    });
    expect(a.lifecycle).toBe('stopped');
  });
});

describe('NodeAgent end to end: selector → gateway → agent → result (gateway, worker, selector)', () => {
  const env = {
    SB_ACK_TIMEOUT_MS: '600',
    SB_JOB_TIMEOUT_MS: '1000',
    SB_REAPER_INTERVAL_MS: '200',
    SB_MAX_ATTEMPTS: '2',
  };
  let gw: TestGateway;
  let worker: TestWorker;
  let selector: TestSelector;
  let fast: NodeAgent;
  let stuck: NodeAgent;
  const stuckSignals: AbortSignal[] = [];

  interface JobView {
    status: string;
    node_id: string;
    attempts: { attempt_id: number; node_id: string; status: string; reason?: string }[];
    result?: Record<string, unknown>;
  }
  const view = async (jobId: string, waitMs = 0): Promise<JobView> =>
    (await (await selector.api(`/v1/jobs/${jobId}?wait_ms=${waitMs}`)).json()) as JobView;
  const submit = async (body: Record<string, unknown>): Promise<number> =>
    (
      await selector.api('/v1/jobs', {
        method: 'POST',
        body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', ...body }),
      })
    ).status;

  beforeAll(async () => {
    const prefix = uniquePrefix('agent-e2e');
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() }, env);
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() }, env);
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() }, env);
    fast = startAgent({
      gatewayUrls: [gw.ws],
      registration: registration('e2e-fast'),
      handler: simulatedHandler({ meanMs: 50, sigma: 0 }),
      heartbeatIntervalMs: 200,
    });
    stuck = startAgent({
      gatewayUrls: [gw.ws],
      registration: registration('e2e-stuck'),
      handler: async (_job, { signal, started }) => {
        stuckSignals.push(signal);
        started();
        await sleep(60_000, signal);
        return {};
      },
      heartbeatIntervalMs: 200,
    });
    await waitFor(
      async () => ((await (await selector.api('/v1/snapshot')).json()) as { nodes: number }).nodes === 2,
      { timeoutMs: 10_000 },
    );
    await waitFor(async () => (await submit({ dry_run: true, preferred_node_id: 'e2e-stuck' })) === 200);
  });
  afterAll(async () => {
    await Promise.all([fast.stop(0), stuck.stop(0)]);
    await selector.close();
    await worker.close();
    await gw.close();
  });

  it('a job placed by the selector runs on the agent; the simulated result is stored', async () => {
    expect(
      await submit({ job_id: 'e2e-1', preferred_node_id: 'e2e-fast', payload: { utterance_index: 7 } }),
    ).toBe(201);
    const v = await waitFor(async () => {
      const job = await view('e2e-1', 2000);
      return job.status === 'finished' && job;
    });
    expect(v.node_id).toBe('e2e-fast');
    expect(v.result).toMatchObject({
      job_id: 'e2e-1',
      attempt_id: 1,
      node_id: 'e2e-fast',
      success: true,
      utterance_index: 7,
      text_asr: '[simulated zh transcript #7]',
    });
    expect(fast.stats.jobs).toMatchObject({ received: 1, succeeded: 1 });
  });

  it('a job without a result in time: job_cancel aborts the handler (no result), the job fails over', async () => {
    expect(await submit({ job_id: 'e2e-2', preferred_node_id: 'e2e-stuck' })).toBe(201);
    await waitFor(() => stuck.stats.jobs.cancelled === 1, { timeoutMs: 10_000, message: 'job_cancel' });
    expect(stuckSignals[0]?.aborted).toBe(true);
    const v = await waitFor(
      async () => {
        const job = await view('e2e-2', 2000);
        return job.status === 'finished' && job;
      },
      { timeoutMs: 10_000 },
    );
    expect(v.attempts).toMatchObject([
      { attempt_id: 1, node_id: 'e2e-stuck' },
      { attempt_id: 2, node_id: 'e2e-fast', status: 'finished' },
    ]);
    expect(stuck.stats.jobs).toMatchObject({ received: 1, succeeded: 0, failed: 0, cancelled: 1 });
    expect(stuck.runningJobs).toBe(0);
  });
});

describe('agent timing (pure, alongside the integration tests it supports)', () => {
  it('TimerQueue runs callbacks in due order on one timer and honours cancel', async () => {
    const q = new TimerQueue();
    const fired: string[] = [];
    q.after(300, () => fired.push('c'));
    q.after(10, () => fired.push('a'));
    const cancelled = q.after(250, () => fired.push('x'));
    q.after(250, () => fired.push('b'));
    q.after(10, () => q.after(5, () => fired.push('a2')));
    cancelled.cancel();
    expect(q.size).toBe(4);
    await waitFor(() => fired.length === 4);
    expect(fired).toEqual(['a', 'a2', 'b', 'c']);
    expect(q.size).toBe(0);
    q.close();
    q.after(0, () => fired.push('after close'));
    expect(q.size).toBe(0);
  });

  it('backoff is full-jitter exponential and capped; jitter stays within its fraction', () => {
    expect(backoffDelay(0, 250, 10_000, () => 0.999)).toBe(249);
    expect(backoffDelay(3, 250, 10_000, () => 0.5)).toBe(1000);
    expect(backoffDelay(50, 250, 10_000, () => 0.999)).toBe(9990);
    expect(backoffDelay(5, 250, 10_000, () => 0)).toBe(0);
    expect(withJitter(1000, 0.1, () => 0)).toBe(900);
    expect(withJitter(1000, 0.1, () => 0.999999)).toBe(1100);
  });
});
