import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { JobHandler } from '../../agent/job-runner.ts';
import { NodeAgent, type NodeAgentOptions } from '../../agent/node-agent.ts';
import type { HeartbeatParts, JobAssign, RegistrationBody } from '../../agent/protocol.ts';
import { registerBody } from './node-fixtures.ts';
import { waitFor } from './redis.ts';
import { JOIN_TOKEN } from './service-harness.ts';
import type { Frame } from './ws-client.ts';

/**
 * What the NodeAgent tests (test/integration/node-agent*.test.ts) share: agents with test
 * defaults, a tiny local gateway stand-in (a real `ws` server) fed by hand, job frames and a
 * handler whose jobs finish when the test says so.
 */

export const usage = (): HeartbeatParts => ({
  resource_usage: { cpu_percent: 20, gpu_percent: 30, gpu_mem_percent: 40, mem_percent: 50 },
});

export const registration = (nodeId: string | null): RegistrationBody =>
  registerBody({ node_id: nodeId ?? undefined }) as RegistrationBody;

/** A started agent with test defaults. */
export function startAgent(
  opts: Partial<NodeAgentOptions> & Pick<NodeAgentOptions, 'gatewayUrls'>,
): NodeAgent {
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

/** Agents a test started; `afterEach(stopAgents)` stops them whatever happened. */
const agents: NodeAgent[] = [];
export function agent(opts: Partial<NodeAgentOptions> & Pick<NodeAgentOptions, 'gatewayUrls'>): NodeAgent {
  const a = startAgent(opts);
  agents.push(a);
  return a;
}
export async function stopAgents(): Promise<void> {
  await Promise.all(agents.splice(0).map((a) => a.stop(0)));
}

/** The arguments of the next `name` event of `a` (for which `match` holds). */
export function nextEvent(
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

// ---------------------------------------------------------------------------------------------
// The job path, against a tiny local gateway stand-in (a real `ws` server): the gateway's job
// delivery is not built yet, so frames are fed by hand.

export class FakeConnection {
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

export class FakeGateway {
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

export const ack = (nodeId: string): Record<string, unknown> => ({
  type: 'node_register_ack',
  node_id: nodeId,
  message: 'registered',
  status: 'registering',
  node_token: `node-token-of-${nodeId}`,
  heartbeat_interval_ms: 60_000,
  node_ttl_ms: 180_000,
});

let jobSeq = 0;
export const assign = () => ({
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
export function controlledHandler() {
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
