import type { AgentLog } from './agent-log.ts';
import type { HeartbeatParts } from './protocol.ts';
import { withJitter, type TimerHandle, type Timers } from './timers.ts';

export interface HeartbeatLoopDeps {
  timers: Timers;
  random: () => number;
  /** ±fraction of each interval. */
  jitter: number;
  /** The first interval after `start` is uniform in (0, interval] instead of interval ± jitter. */
  spreadFirstInterval: boolean;
  /** The node's load and capabilities (may be slow: a beat still due when it resolves is skipped). */
  source: () => HeartbeatParts | Promise<HeartbeatParts>;
  /** Sends one heartbeat. */
  send(parts: HeartbeatParts): void;
  /** Sends a WebSocket ping (the gateway's pong shows the connection is alive). */
  ping(): void;
  /** No pong for two intervals: the connection is dead even though TCP has not noticed. */
  onDead(): void;
  log: AgentLog;
}

/**
 * The heartbeat schedule of one registration: a beat at once, then one every interval ±jitter,
 * each on the shared timers. A `stop()` (socket closed, re-registering) makes any beat still in
 * flight a no-op.
 */
export class HeartbeatLoop {
  private generation = 0;
  private intervalMs = 0;
  private timer: TimerHandle | null = null;
  /** Generation of the source call in flight, if any. */
  private inFlight: number | null = null;
  private pingAt: number | null = null;

  constructor(private readonly deps: HeartbeatLoopDeps) {}

  start(intervalMs: number): void {
    this.stop();
    this.intervalMs = intervalMs;
    void this.beat(this.generation, true);
  }

  stop(): void {
    this.generation++;
    this.timer?.cancel();
    this.timer = null;
    this.pingAt = null;
  }

  pong(): void {
    this.pingAt = null;
  }

  private async beat(generation: number, first: boolean): Promise<void> {
    const d = this.deps;
    const delay =
      first && d.spreadFirstInterval
        ? Math.max(1, Math.ceil(this.intervalMs * d.random()))
        : withJitter(this.intervalMs, d.jitter, d.random);
    this.timer = d.timers.after(delay, () => void this.beat(generation, false));
    if (this.pingAt !== null && performance.now() - this.pingAt > Math.max(2 * this.intervalMs, 2_000)) {
      this.stop();
      d.onDead();
      return;
    }
    if (this.inFlight === generation) return;
    this.inFlight = generation;
    try {
      const parts = await d.source();
      if (generation !== this.generation) return;
      d.send(parts);
      if (this.pingAt === null) {
        this.pingAt = performance.now();
        d.ping();
      }
    } catch (err) {
      d.log.warn({ err: (err as Error).message }, 'heartbeat callback failed; skipping this heartbeat');
    } finally {
      if (this.inFlight === generation) this.inFlight = null;
    }
  }
}
