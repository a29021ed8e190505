import WebSocket from 'ws';
import { silentLog, type AgentLog } from './agent-log.ts';
import {
  linguaHeartbeat,
  linguaPartial,
  linguaRegister,
  linguaResult,
  type LinguaJobIds,
  type LinguaShape,
  type LinguaUsage,
} from './lingua-frames.ts';
import type { Lifecycle } from './node-agent-types.ts';
import type { JobStats } from './job-runner.ts';
import { lognormal } from './random.ts';
import { systemTimers, type TimerHandle, type Timers } from './timers.ts';

export interface LinguaAgentOptions {
  /** Gateway URLs; each reconnect moves to the next. The token goes in the query, as the client's. */
  gatewayUrls: string[];
  token?: string;
  shape: LinguaShape;
  /** The id a node registered with before (default: none, the gateway generates one). */
  nodeId?: string | null;
  /** The client's is 15 s. */
  heartbeatIntervalMs?: number;
  /** The client reconnects 5 s after a close. */
  reconnectMs?: number;
  /** Simulated work: lognormal around `meanMs` (default 2000), shape `sigma` (0.5). */
  job?: { meanMs?: number; sigma?: number; failureRate?: number };
  usage?: (runningJobs: number) => LinguaUsage;
  timers?: Timers;
  random?: () => number;
  log?: AgentLog;
}

export interface LinguaStats {
  connects: number;
  disconnects: number;
  registrations: number;
  heartbeats: number;
  /** `error` frames by code: the client ignores them ("Unknown message type"); counted here. */
  errors: Record<string, number>;
  partials: number;
  jobs: JobStats;
}

interface Running {
  job: LinguaJobIds;
  timers: TimerHandle[];
}

const idsOf = (f: Record<string, unknown>): LinguaJobIds => ({
  job_id: String(f['job_id']),
  attempt_id: Number(f['attempt_id']),
  session_id: typeof f['session_id'] === 'string' ? f['session_id'] : '',
  utterance_index: typeof f['utterance_index'] === 'number' ? f['utterance_index'] : -1,
  trace_id: typeof f['trace_id'] === 'string' ? f['trace_id'] : '',
});

/**
 * A node speaking exactly the lingua client's dialect (`agent/cli.ts --lingua`): registers
 * with `node_id` null (then its old id), heartbeats every 15 s, and on a reconnect sends a
 * heartbeat before registering; never sends job_ack, job_started or node_error; answers each
 * job with one job_result when the work is done (asr_partial frames meanwhile when the job asks
 * for streaming ASR); refuses a second job with the same job_id or (session_id,
 * utterance_index) with PROCESSING_ERROR, as the client does; ignores error frames.
 */
export class LinguaNodeAgent {
  readonly stats: LinguaStats = {
    connects: 0,
    disconnects: 0,
    registrations: 0,
    heartbeats: 0,
    errors: {},
    partials: 0,
    jobs: { received: 0, duplicates: 0, declined: 0, succeeded: 0, failed: 0, cancelled: 0 },
  };
  private id: string | null;
  private ws: WebSocket | null = null;
  private urlIndex = 0;
  private life: Lifecycle = 'idle';
  private isRegistered = false;
  private heartbeatTimer: TimerHandle | null = null;
  private reconnectTimer: TimerHandle | null = null;
  private readonly running = new Map<string, Running>();
  private readonly processedJobIds = new Set<string>();
  private readonly utteranceSlots = new Set<string>();
  private efficiencies: Record<string, number> | null = null;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly log: AgentLog;

  constructor(private readonly opts: LinguaAgentOptions) {
    if (opts.gatewayUrls.length === 0) throw new Error('LinguaNodeAgent: gatewayUrls is empty');
    this.id = opts.nodeId ?? null;
    this.timers = opts.timers ?? systemTimers;
    this.random = opts.random ?? Math.random;
    this.log = opts.log ?? silentLog;
  }

  get nodeId(): string | null {
    return this.id;
  }
  get registered(): boolean {
    return this.isRegistered;
  }
  get lifecycle(): Lifecycle {
    return this.life;
  }
  get runningJobs(): number {
    return this.running.size;
  }

  start(): void {
    if (this.life !== 'idle') throw new Error(`LinguaNodeAgent.start(): already ${this.life}`);
    this.life = 'running';
    this.connect();
  }

  /** Lets running jobs finish for up to `graceMs`, then closes with 1000. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.life === 'stopped') return;
    this.life = 'stopping';
    this.reconnectTimer?.cancel();
    const deadline = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const r of this.running.values()) for (const t of r.timers) t.cancel();
    this.running.clear();
    this.heartbeatTimer?.cancel();
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.close(1000, 'node stopping');
      await closed;
    }
    this.life = 'stopped';
  }

  private connect(): void {
    const base = this.opts.gatewayUrls[this.urlIndex++ % this.opts.gatewayUrls.length]!;
    const url = this.opts.token
      ? `${base}${base.includes('?') ? '&' : '?'}token=${encodeURIComponent(this.opts.token)}`
      : base;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.on('open', () => {
      this.stats.connects++;
      // the client's order on a reconnect: a heartbeat with its old id, then node_register
      if (this.id !== null) this.heartbeat();
      this.send(linguaRegister(this.opts.shape, this.id));
    });
    ws.on('message', (data) => this.onMessage((data as Buffer).toString('utf8')));
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'WebSocket error'));
    ws.on('close', () => {
      if (this.ws === ws) this.ws = null;
      this.stats.disconnects++;
      this.isRegistered = false;
      this.heartbeatTimer?.cancel();
      if (this.life !== 'running') return;
      this.reconnectTimer = this.timers.after(this.opts.reconnectMs ?? 5000, () => this.connect());
    });
  }

  private onMessage(text: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    switch (frame['type']) {
      case 'node_register_ack':
        this.id = String(frame['node_id']);
        this.isRegistered = true;
        this.stats.registrations++;
        this.heartbeat(); // at once, then every interval
        return;
      case 'job_assign':
        this.onJob(frame);
        return;
      case 'job_cancel':
        this.cancel(String(frame['job_id']));
        return;
      default:
        if (frame['type'] === 'error') {
          const code = String(frame['code']);
          this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
        }
        this.log.warn({ messageType: frame['type'] }, 'Unknown message type');
    }
  }

  private heartbeat(): void {
    this.heartbeatTimer?.cancel();
    if (this.id === null) return;
    const usage = this.opts.usage?.(this.running.size) ?? {
      cpu: 10,
      gpu: this.opts.shape.gpu ? 30 : null,
      gpuMem: this.opts.shape.gpu ? 40 : null,
      mem: 30,
      runningJobs: this.running.size,
    };
    if (this.send(linguaHeartbeat(this.opts.shape, this.id, usage, this.efficiencies)))
      this.stats.heartbeats++;
    this.heartbeatTimer = this.timers.after(this.opts.heartbeatIntervalMs ?? 15_000, () => this.heartbeat());
  }

  private onJob(frame: Record<string, unknown>): void {
    const job = idsOf(frame);
    this.stats.jobs.received++;
    const slot = `${job.session_id}:${job.utterance_index}`;
    const refuse = (why: string) => {
      this.stats.jobs.duplicates++;
      this.send(linguaResult(this.id ?? '', job, { error: why, ms: 1 }));
    };
    if (this.processedJobIds.has(job.job_id))
      return refuse('DUPLICATE_JOB_ID: job_id already processed by this node');
    if (this.utteranceSlots.has(slot))
      return refuse(
        'DUPLICATE_UTTERANCE_INDEX: another job already accepted for this session_id and utterance_index',
      );
    this.processedJobIds.add(job.job_id);
    this.utteranceSlots.add(slot);
    const o = this.opts.job ?? {};
    const ms = Math.max(1, Math.round(lognormal(this.random, o.meanMs ?? 2000, o.sigma ?? 0.5)));
    const running: Running = { job, timers: [] };
    this.running.set(job.job_id, running);
    if (frame['enable_streaming_asr'] === true) {
      const every = Math.max(50, Number(frame['partial_update_interval_ms']) || 1000);
      for (let at = every, n = 1; at < ms; at += every, n++) {
        running.timers.push(
          this.timers.after(at, () => {
            if (this.send(linguaPartial(this.id ?? '', job, `[partial ${n} of ${job.job_id}]`)))
              this.stats.partials++;
          }),
        );
      }
    }
    running.timers.push(this.timers.after(ms, () => this.finish(job, ms, frame)));
  }

  private finish(job: LinguaJobIds, ms: number, frame: Record<string, unknown>): void {
    if (!this.running.delete(job.job_id)) return;
    const failed = this.random() < (this.opts.job?.failureRate ?? 0);
    const src = typeof frame['src_lang'] === 'string' ? frame['src_lang'] : '?';
    const tgt = typeof frame['tgt_lang'] === 'string' ? frame['tgt_lang'] : '?';
    const outcome = failed
      ? { error: `simulated failure after ${ms} ms`, ms }
      : { textAsr: `[${src} transcript ${job.job_id}]`, textTranslated: `[${tgt} text ${job.job_id}]`, ms };
    if (failed) this.stats.jobs.failed++;
    else this.stats.jobs.succeeded++;
    this.efficiencies = { 'faster-whisper-vad': 3.2, 'nmt-m2m100': 41.5, 'piper-tts': 5.1 };
    this.send(linguaResult(this.id ?? '', job, outcome)); // lost when the socket is down, as the client's
  }

  private cancel(jobId: string): void {
    const running = this.running.get(jobId);
    if (!running) return;
    for (const t of running.timers) t.cancel();
    this.running.delete(jobId);
    this.stats.jobs.cancelled++;
  }

  private send(frame: Record<string, unknown>): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }
}
