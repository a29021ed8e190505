import { SwitchboardError } from '../errors.ts';
import type { KeyBuilder } from '../keys.ts';
import type { Logger } from '../logger.ts';
import { ShardSubscriber, type SubscriberTopology } from './shard-subscriber.ts';

/**
 * What a job-shard script announces on `{<prefix>:j<k>}:events` (SPUBLISH, in the script that
 * made the change): `<job id>|<kind>`, kind = the status it moved to (advanceJob-2.lua:
 * accepted, running, finished, failed; failoverJob-3.lua: failed) or `partial`
 * (appendPartial-2.lua).
 */
export type JobEventKind = 'accepted' | 'running' | 'finished' | 'failed' | 'partial';

/** Parses a `<job id>|<kind>` announcement; null for anything else. */
export function parseJobEvent(message: string): { jobId: string; kind: string } | null {
  const bar = message.lastIndexOf('|');
  if (bar <= 0) return null;
  return { jobId: message.slice(0, bar), kind: message.slice(bar + 1) };
}

export const isTerminalEvent = (kind: string): boolean => kind === 'finished' || kind === 'failed';

/**
 * Why a wait ended: `event` (an announcement for the job), `resync` (its shard was subscribed
 * again: announcements may have been missed), `fallback` (the bounded re-read period passed with
 * none), `timeout` (the caller's time ran out), `closed` (the watch was closed: client gone,
 * service stopping).
 */
export type WakeCause = 'event' | 'resync' | 'fallback' | 'timeout' | 'closed';

export interface JobWatch {
  /**
   * Resolves at the first of: an announcement for the job (one that arrived since the previous
   * call, or since the watch was made, resolves at once), a resubscription of its shard, the
   * fallback period, `ms`, or close(). The caller then re-reads the job.
   */
  next(ms: number): Promise<WakeCause>;
  close(): void;
}

export interface JobEventsOptions {
  /** SB_MAX_JOB_WAITERS: watches open at once in this process; beyond, RATE_LIMITED (429). */
  maxWaiters: number;
  /** SB_JOB_EVENTS_FALLBACK_MS: a waiter re-reads at least this often, announcement or not. */
  fallbackMs: number;
  /** Counts every wake by cause, and every shed watch (metrics). */
  onWake?: (cause: WakeCause) => void;
  onShed?: () => void;
}

class Waiter implements JobWatch {
  private woken: WakeCause | null = null;
  private resolve: ((cause: WakeCause) => void) | null = null;
  private timer: NodeJS.Timeout | undefined;
  closed = false;

  constructor(
    private readonly hub: JobEvents,
    readonly jobId: string,
    readonly shard: number,
    readonly wants: (kind: string) => boolean,
  ) {}

  wake(cause: WakeCause): void {
    if (this.resolve) this.settle(cause);
    else if (this.woken === null || cause === 'closed') this.woken = cause;
  }

  next(ms: number): Promise<WakeCause> {
    if (this.woken !== null) {
      const cause = this.woken;
      if (!this.closed) this.woken = null;
      this.hub.counted(cause);
      return Promise.resolve(cause);
    }
    const fallback = this.hub.fallbackMs;
    return new Promise<WakeCause>((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(
        () => this.settle(ms > fallback ? 'fallback' : 'timeout'),
        Math.min(ms, fallback),
      );
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.forget(this);
    this.wake('closed');
  }

  private settle(cause: WakeCause): void {
    clearTimeout(this.timer);
    const resolve = this.resolve;
    this.resolve = null;
    this.hub.counted(cause);
    resolve?.(cause);
  }
}

/**
 * Results pushed, not polled (ARCHITECTURE.md "Waiting for a job"): ONE sharded subscription per
 * job shard for the whole process, and a map job id → waiters. A waiter registers BEFORE it reads
 * the job, so an announcement between its read and its wait is kept; it is woken by an
 * announcement of a kind it wants, by its shard's resubscription (after a reconnect, a failover, a
 * moved slot: announcements of the gap are lost, so every waiter of the shard re-reads once), and
 * at the latest after `fallbackMs` — nothing hangs on a lost announcement.
 */
export class JobEvents {
  private readonly byJob = new Map<string, Set<Waiter>>();
  private readonly subscriber: ShardSubscriber;
  private size = 0;
  private stopping = false;

  constructor(
    private readonly keys: KeyBuilder,
    topology: SubscriberTopology,
    private readonly options: JobEventsOptions,
    log: Logger,
  ) {
    const channels = Array.from({ length: keys.shards }, (_, shard) => keys.jobEvents(shard));
    this.subscriber = new ShardSubscriber(
      topology,
      channels,
      {
        message: (_channel, message) => this.announced(message),
        subscribed: (shard) => this.resync(shard),
      },
      log,
      options.fallbackMs,
    );
  }

  get fallbackMs(): number {
    return this.options.fallbackMs;
  }

  /** Watches open now. */
  get waiters(): number {
    return this.size;
  }

  /** Job shards whose announcements this process receives now (of `keys.shards`). */
  get subscribedShards(): number {
    return this.subscriber.subscribedCount;
  }

  start(): void {
    this.subscriber.start();
  }

  /**
   * A watch on a job: make it BEFORE reading the job, close it when done (also when the client
   * goes away). `wants` filters the announcements that wake it (default: every one). Throws
   * RATE_LIMITED (429) when SB_MAX_JOB_WAITERS are open, SHUTTING_DOWN while stopping.
   */
  watch(jobId: string, wants: (kind: string) => boolean = () => true): JobWatch {
    if (this.stopping) throw new SwitchboardError('SHUTTING_DOWN');
    if (this.size >= this.options.maxWaiters) {
      this.options.onShed?.();
      throw new SwitchboardError(
        'RATE_LIMITED',
        `this selector already holds ${this.options.maxWaiters} waiting requests (SB_MAX_JOB_WAITERS)`,
      );
    }
    const waiter = new Waiter(this, jobId, this.keys.jobShardOf(jobId), wants);
    let set = this.byJob.get(jobId);
    if (!set) this.byJob.set(jobId, (set = new Set()));
    set.add(waiter);
    this.size++;
    return waiter;
  }

  /** Wakes every waiter with `closed` (they answer what they have) and refuses new watches. */
  stop(): void {
    this.stopping = true;
    for (const set of [...this.byJob.values()]) for (const w of [...set]) w.close();
  }

  close(): void {
    this.stop();
    this.subscriber.close();
  }

  /** @internal a waiter closing */
  forget(waiter: Waiter): void {
    const set = this.byJob.get(waiter.jobId);
    if (!set?.delete(waiter)) return;
    this.size--;
    if (set.size === 0) this.byJob.delete(waiter.jobId);
  }

  /** @internal a waiter woke */
  counted(cause: WakeCause): void {
    this.options.onWake?.(cause);
  }

  private announced(message: string): void {
    const event = parseJobEvent(message);
    if (!event) return;
    const set = this.byJob.get(event.jobId);
    if (!set) return;
    for (const w of set) if (w.wants(event.kind)) w.wake('event');
  }

  private resync(shard: number): void {
    for (const set of this.byJob.values()) for (const w of set) if (w.shard === shard) w.wake('resync');
  }
}
