import { EventEmitter } from 'node:events';
import { silentLog, type AgentLog } from './agent-log.ts';
import { CLOSE_NORMAL, GatewayConnection } from './gateway-connection.ts';
import { HeartbeatLoop } from './heartbeat-loop.ts';
import { JobRunner } from './job-runner.ts';
import type {
  AgentStats,
  ConnectionPhase,
  Lifecycle,
  NodeAgentEvents,
  NodeAgentOptions,
} from './node-agent-types.ts';
import {
  parseGatewayFrame,
  type ErrorFrame,
  type HeartbeatParts,
  type NodeControl,
  type RegisterAck,
  type RegistrationBody,
} from './protocol.ts';
import { systemUsageSampler } from './system-usage.ts';
import { systemTimers, type TimerHandle, type Timers } from './timers.ts';

export type {
  AgentStats,
  ConnectionPhase,
  Lifecycle,
  NodeAgentEvents,
  NodeAgentOptions,
} from './node-agent-types.ts';

/** Answers to a registration worth retrying on the same socket. */
const RETRYABLE_REGISTER_ERRORS = new Set([
  'RATE_LIMITED',
  'SCHEDULER_DEPENDENCY_DOWN',
  'SHUTTING_DOWN',
  'INTERNAL',
]);
/** Floor of the heartbeat interval, whatever the option or the ack says. */
const MIN_INTERVAL_MS = 10;

/**
 * One node's connection to Switchboard (docs/PROTOCOL.md "Node WebSocket"): registers on
 * every (re)connect, heartbeats right after the ack and then every interval ±jitter, re-registers
 * on NOT_REGISTERED, reconnects to the next gateway URL with backoff (gateway-connection.ts),
 * and runs assigned jobs through its handler (job-runner.ts).
 */
export class NodeAgent extends EventEmitter<NodeAgentEvents> {
  readonly stats: AgentStats;
  private readonly runner: JobRunner;
  private readonly conn: GatewayConnection;
  private readonly heartbeats: HeartbeatLoop;
  private readonly timers: Timers;
  private readonly log: AgentLog;
  private token: string | undefined;
  private id: string | null;
  private phase: ConnectionPhase = 'disconnected';
  private life: Lifecycle = 'idle';
  private lastTimestamp = 0;
  /** The register in flight was its socket's first frame, so an error frame now is its answer. */
  private registerSentFirst = false;
  /** Register timeout, or a register retry after backoff. */
  private registerTimer: TimerHandle | null = null;
  /** Re-registers halfway to the node token's expiry, for a fresh one. */
  private renewTimer: TimerHandle | null = null;
  /** Job frames made while not registered, sent after the next ack. */
  private outbox: string[] = [];
  private stopping: Promise<void> | null = null;

  constructor(private readonly opts: NodeAgentOptions) {
    super();
    if (opts.gatewayUrls.length === 0) throw new Error('NodeAgent: gatewayUrls is empty');
    if (opts.heartbeatIntervalMs !== undefined && !(opts.heartbeatIntervalMs >= MIN_INTERVAL_MS)) {
      throw new Error(`NodeAgent: heartbeatIntervalMs must be at least ${MIN_INTERVAL_MS}`);
    }
    if (opts.jitter !== undefined && !(opts.jitter >= 0 && opts.jitter < 1)) {
      throw new Error('NodeAgent: jitter must be in [0, 1)');
    }
    this.timers = opts.timers ?? systemTimers;
    this.log = opts.log ?? silentLog;
    const random = opts.random ?? Math.random;
    this.token = opts.token;
    this.id = this.registration().node_id ?? null;
    this.runner = new JobRunner({
      handler: opts.handler ?? null,
      maxJobs: () => this.registration().max_concurrent_jobs ?? 4,
      maxMessageBytes: opts.maxMessageBytes ?? 262_144,
      send: (frame) => this.sendJobFrame(frame),
      nodeId: () => this.id ?? '',
      timers: this.timers,
      log: this.log,
    });
    this.stats = {
      connects: 0,
      connectFailures: 0,
      disconnects: 0,
      registrations: 0,
      heartbeats: 0,
      framesSent: 0,
      framesReceived: 0,
      framesDropped: 0,
      errors: {},
      jobs: this.runner.stats,
    };
    this.conn = new GatewayConnection({
      urls: opts.gatewayUrls,
      token: () => this.token,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      backoff: { baseMs: opts.backoff?.baseMs ?? 250, maxMs: opts.backoff?.maxMs ?? 10_000 },
      timers: this.timers,
      random,
      log: this.log,
      stats: this.stats,
      onUnauthorized: () => this.useJoinToken('node token refused at upgrade'),
      onOpen: (url) => {
        this.log.info({ url }, 'connected');
        this.emit('connected', { url });
        this.sendRegister();
      },
      onText: (text) => this.onText(text),
      onPong: () => this.heartbeats.pong(),
      onClose: (info) => this.onClose(info),
    });
    this.heartbeats = new HeartbeatLoop({
      timers: this.timers,
      random,
      jitter: opts.jitter ?? 0.1,
      spreadFirstInterval: opts.spreadFirstInterval ?? false,
      source: opts.heartbeat ?? systemUsageSampler(),
      send: (parts) => this.sendHeartbeat(parts),
      ping: () => this.conn.ping(),
      onDead: () => {
        this.log.warn({ url: this.conn.url }, 'gateway not answering pings; reconnecting');
        this.conn.terminate();
      },
      log: this.log,
    });
  }

  /** The registered node id (from the ack), else the configured one, else null. */
  get nodeId(): string | null {
    return this.id;
  }

  /** The socket is open (registered or registering). */
  get connected(): boolean {
    return this.conn.open;
  }

  get registered(): boolean {
    return this.phase === 'registered';
  }

  get state(): ConnectionPhase {
    return this.phase;
  }

  get lifecycle(): Lifecycle {
    return this.life;
  }

  /** The gateway URL of the current socket, or null. */
  get gatewayUrl(): string | null {
    return this.conn.active ? this.conn.url : null;
  }

  get runningJobs(): number {
    return this.runner.count;
  }

  /** Draining (node_control drain, or stopping): new assignments are declined. */
  get draining(): boolean {
    return this.runner.draining;
  }

  /** Connects to the first gateway URL and keeps the node connected until `stop()`. */
  start(): void {
    if (this.life !== 'idle') throw new Error(`NodeAgent.start(): already ${this.life}`);
    this.life = 'running';
    this.phase = 'connecting';
    this.conn.connect();
  }

  /**
   * Graceful stop: no new jobs; waits up to `graceMs` for running jobs (their results are
   * still delivered, reconnecting if need be), aborts the rest (failure results), then closes
   * the socket with 1000 so the gateway marks the node offline at once. Idempotent.
   */
  stop(graceMs = this.opts.shutdownGraceMs ?? 30_000): Promise<void> {
    this.stopping ??= this.shutdown(graceMs);
    return this.stopping;
  }

  /** Stops (true) or resumes (false) taking new jobs, as `node_control` drain does. */
  setDraining(draining: boolean): void {
    if (this.life === 'stopping' || this.life === 'stopped') return;
    this.runner.draining = draining;
  }

  private async shutdown(graceMs: number): Promise<void> {
    if (this.life === 'running') {
      this.life = 'stopping';
      this.runner.draining = true;
      if (!(await this.runner.whenIdle(graceMs))) {
        this.log.warn({ running: this.runner.count }, 'grace period over: aborting running jobs');
        this.runner.abortAll('the node agent is shutting down');
        await this.runner.whenIdle(2_000);
      }
      this.heartbeats.stop();
      this.registerTimer?.cancel();
      await this.conn.closeForGood('node agent stopping');
      this.phase = 'disconnected';
      this.log.info({ nodeId: this.id }, 'node agent stopped');
    }
    this.life = 'stopped';
    this.emit('stopped');
  }

  private registration(): RegistrationBody {
    const r = this.opts.registration;
    return typeof r === 'function' ? r() : r;
  }

  private useJoinToken(why: string): void {
    if (this.token === this.opts.token) return;
    this.log.warn({ nodeId: this.id }, `${why}; using the join token again`);
    this.token = this.opts.token;
  }

  private sendRegister(): void {
    if (!this.conn.open) return;
    this.phase = 'registering';
    this.heartbeats.stop();
    this.registerTimer?.cancel();
    const body: Record<string, unknown> = { acks_jobs: true, ...this.registration(), type: 'node_register' };
    if (this.id) body['node_id'] = this.id;
    this.registerSentFirst = this.conn.sentOnSocket === 0;
    this.conn.send(JSON.stringify(body));
    this.registerTimer = this.timers.after(this.opts.registerTimeoutMs ?? 10_000, () => {
      if (this.phase !== 'registering') return;
      this.log.warn({ url: this.conn.url }, 'no register ack in time; reconnecting');
      this.conn.terminate();
    });
  }

  private onText(text: string): void {
    const parsed = parseGatewayFrame(text);
    if (!parsed.ok) {
      this.log.warn({ type: parsed.type, problem: parsed.problem }, 'ignoring a frame from the gateway');
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case 'node_register_ack':
        return this.onAck(frame);
      case 'error':
        return this.onErrorFrame(frame);
      case 'job_assign':
        this.emit('job_assign', frame, this.runner.assign(frame));
        return;
      case 'job_cancel':
        this.runner.cancel(frame);
        this.emit('job_cancel', frame);
        return;
      case 'node_control':
        return this.onControl(frame);
    }
  }

  private onAck(ack: RegisterAck): void {
    this.registerTimer?.cancel();
    this.registerTimer = null;
    const again = this.stats.registrations > 0;
    this.stats.registrations++;
    this.id = ack.node_id;
    if (ack.node_token) this.token = ack.node_token;
    this.renewTimer?.cancel();
    this.renewTimer = null;
    if (ack.node_token && ack.node_token_expires_at) {
      const inMs = Math.max(1000, (ack.node_token_expires_at - Date.now()) / 2);
      this.renewTimer = this.timers.after(inMs, () => {
        if (this.phase === 'registered') this.sendRegister();
      });
    }
    const intervalMs = Math.max(MIN_INTERVAL_MS, this.opts.heartbeatIntervalMs ?? ack.heartbeat_interval_ms);
    this.phase = 'registered';
    this.conn.resetBackoff();
    this.log.info({ nodeId: ack.node_id, url: this.conn.url, status: ack.status, again }, 'registered');
    this.emit('registered', {
      nodeId: ack.node_id,
      url: this.conn.url,
      status: ack.status ?? 'registering',
      heartbeatIntervalMs: intervalMs,
      again,
    });
    const queued = this.outbox;
    this.outbox = [];
    for (const text of queued) this.conn.send(text);
    this.heartbeats.start(intervalMs);
  }

  private onErrorFrame({ code, message }: ErrorFrame): void {
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
    this.emit('gateway_error', { code, message });
    if (code === 'NOT_REGISTERED') {
      // Also what frames sent before a re-register get: one register is enough.
      if (this.phase === 'registered') {
        this.log.warn({ nodeId: this.id, message }, 'gateway says NOT_REGISTERED; registering again');
        this.sendRegister();
      }
      return;
    }
    if (this.phase === 'registering') return this.onRegisterError(code, message);
    const level = code === 'RATE_LIMITED' || code === 'SCHEDULER_DEPENDENCY_DOWN' ? 'warn' : 'error';
    this.log[level]({ nodeId: this.id, code, message }, 'error from the gateway');
  }

  private onRegisterError(code: string, message: string): void {
    if (code === 'UNAUTHORIZED') this.useJoinToken('node token refused');
    if (RETRYABLE_REGISTER_ERRORS.has(code)) {
      const delay = this.conn.nextBackoff();
      this.log.warn({ code, message, retryInMs: delay }, 'registration not accepted yet; retrying');
      this.registerTimer?.cancel();
      this.registerTimer = this.timers.after(delay, () => {
        if (this.phase === 'registering') this.sendRegister();
      });
      return;
    }
    if (!this.registerSentFirst) {
      // Might answer a frame sent before the re-register; the register timeout covers a refusal.
      this.log.warn({ code, message }, 'error from the gateway while re-registering');
      return;
    }
    this.log.error({ code, message }, 'registration refused; reconnecting later');
    this.conn.close(CLOSE_NORMAL, 'registration refused');
  }

  private onControl(frame: NodeControl): void {
    this.log.info({ command: frame.command, reason: frame.reason }, 'node_control');
    this.emit('control', frame);
    switch (frame.command) {
      case 'drain':
        this.setDraining(true);
        return;
      case 'resume':
      case 'undrain':
        this.setDraining(false);
        return;
      case 'shutdown':
        void this.stop();
        return;
      default:
        this.log.warn({ command: frame.command }, 'unknown node_control command; ignored');
    }
  }

  private onClose(info: { url: string; code: number; reason: string; wasOpen: boolean }): void {
    this.heartbeats.stop();
    this.registerTimer?.cancel();
    this.registerTimer = null;
    this.renewTimer?.cancel();
    this.renewTimer = null;
    this.phase = this.life === 'running' || this.life === 'stopping' ? 'connecting' : 'disconnected';
    if (info.wasOpen) this.emit('disconnected', { url: info.url, code: info.code, reason: info.reason });
  }

  private sendHeartbeat(parts: HeartbeatParts): void {
    if (this.phase !== 'registered') return;
    const reg = this.registration();
    // strictly increasing, also across reconnects and a clock stepping back
    const timestamp = Math.max(Date.now(), this.lastTimestamp + 1);
    this.lastTimestamp = timestamp;
    const runningJobs = this.runner.count;
    this.conn.send(
      JSON.stringify({
        ...parts,
        type: 'node_heartbeat',
        node_id: this.id,
        timestamp,
        resource_usage: { ...parts.resource_usage, running_jobs: runningJobs },
        installed_services: parts.installed_services ?? reg.installed_services ?? [],
        capability_by_type: parts.capability_by_type ?? reg.capability_by_type,
      }),
    );
    this.stats.heartbeats++;
    this.emit('heartbeat', { timestamp, runningJobs });
  }

  /** Job frames wait for the next registration when there is no registered socket. */
  private sendJobFrame(frame: Record<string, unknown>): void {
    const text = JSON.stringify(frame);
    if (frame['type'] === 'job_result') this.emit('job_result', frame);
    if (this.phase === 'registered' && this.conn.send(text)) return;
    this.outbox.push(text);
    const max = this.opts.maxQueuedFrames ?? 1000;
    if (this.outbox.length > max) {
      this.outbox.shift();
      this.stats.framesDropped++;
      this.log.warn({ max }, 'frame queue full; dropped the oldest job frame');
    }
  }
}
