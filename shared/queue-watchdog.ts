import type { Job, Queue, Worker } from 'bullmq';
import type { Logger } from './logger.ts';
import { Counter, type Registry } from './metrics.ts';

/** `sb_queue_stalls_total{queue}`: BullMQ workers found stuck and replaced (QueueWatchdog). */
export function queueStallCounter(registry: Registry): Counter<'queue'> {
  return new Counter({
    name: 'sb_queue_stalls_total',
    help: "A queue's jobs left waiting while this process's BullMQ worker took none: the worker was replaced, by queue",
    labelNames: ['queue'] as const,
    registers: [registry],
  });
}

/**
 * The deployment's watchdog timing, from SB_REAPER_INTERVAL_MS as for the liveness tick's:
 * looked at every min(interval, 5 s), stalled after 4 × interval + 2 s.
 */
export function queueWatchdogOptions(reaperIntervalMs: number): QueueWatchdogOptions {
  return { checkEveryMs: Math.min(reaperIntervalMs, 5_000), stallMs: 4 * reaperIntervalMs + 2000 };
}

export interface QueueWatchdogOptions {
  /** How often the queue is looked at (two reads of one job each). */
  checkEveryMs: number;
  /** A job ready this long ago and still waiting, while this worker started none, is a stall. */
  stallMs: number;
}

/**
 * A stall watchdog for one BullMQ worker (snapshot-flush, failover; the liveness
 * tick has its own, LivenessSchedule). A BullMQ worker blocked for good on a connection to a
 * Redis Cluster master that died never takes a job again, and nothing says so: the queue just
 * fills. Every `checkEveryMs` the watchdog reads the oldest waiting job and the earliest delayed
 * one; when a job has been due for more than `stallMs` and this process's worker has started no
 * job for as long, the worker is stuck: a fresh one from `create` replaces it (the stuck one is
 * closed without waiting), `sb_queue_stalls_total{queue}` counts it and one line says so. A
 * worker that is busy (it keeps starting jobs) is never replaced, nor one while other processes
 * keep the queue moving (then no job waits that long). At most one replacement per `stallMs`.
 */
export class QueueWatchdog {
  private worker: Worker;
  private lastStarted = Date.now();
  private lastReplaced = 0;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private closed = false;

  constructor(
    private readonly queue: Queue,
    private readonly create: () => Worker,
    private readonly stalls: Counter<'queue'>,
    private readonly log: Logger,
    private readonly options: QueueWatchdogOptions,
  ) {
    this.worker = this.adopt(create());
  }

  /** The worker in service now. */
  get current(): Worker {
    return this.worker;
  }

  start(): void {
    this.timer = setInterval(() => void this.check().catch(() => undefined), this.options.checkEveryMs);
    this.timer.unref();
  }

  /** When the oldest job ready to run became ready (ms), or null when none waits. */
  async oldestDueAt(): Promise<number | null> {
    const [waiting, delayed] = await Promise.all([
      this.queue.getJobs(['wait'], 0, 0, true),
      this.queue.getJobs(['delayed'], 0, 0, true),
    ]);
    const due = [
      ...waiting.filter(Boolean).map((job: Job) => job.timestamp),
      ...delayed.filter(Boolean).map((job: Job) => job.timestamp + (job.delay ?? 0)),
    ].filter((at) => at <= Date.now());
    return due.length > 0 ? Math.min(...due) : null;
  }

  /** One look; true when it replaced the worker. */
  async check(): Promise<boolean> {
    if (this.closed || this.checking) return false;
    this.checking = true;
    try {
      const dueAt = await this.oldestDueAt();
      const now = Date.now();
      const { stallMs } = this.options;
      if (dueAt === null || now - dueAt <= stallMs) return false;
      if (now - this.lastStarted <= stallMs || now - this.lastReplaced <= stallMs || this.closed)
        return false;
      this.lastReplaced = now;
      const stuck = this.worker;
      this.worker = this.adopt(this.create());
      void stuck.close(true).catch(() => undefined);
      this.stalls.inc({ queue: this.queue.name });
      this.log.warn(
        { queue: this.queue.name, waitingMs: now - dueAt, idleMs: now - this.lastStarted },
        'queue stalled (a job waits while this worker takes none: stuck on a dead connection?): worker replaced',
      );
      return true;
    } finally {
      this.checking = false;
    }
  }

  /** Stops watching; the worker is the caller's to close (`current`). */
  stop(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private adopt(worker: Worker): Worker {
    worker.on('active', () => {
      if (worker === this.worker) this.lastStarted = Date.now();
    });
    return worker;
  }
}
