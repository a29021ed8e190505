import type { Queue } from 'bullmq';
import type { Logger } from '../../shared/logger.ts';
import { LIVENESS_SCHEDULER_ID } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface LivenessScheduleOptions {
  /** SB_REAPER_INTERVAL_MS: how often the liveness tick runs. */
  everyMs: number;
  /** How often this worker checks that the scheduler still exists. */
  checkEveryMs: number;
  /**
   * A scheduler whose next tick is overdue by more than this is stalled: its next tick job was
   * lost, or this worker's BullMQ worker is stuck (a blocking connection to a Cluster master
   * that died). Default: 4 × everyMs + 2 s.
   */
  stallMs?: number;
  /** Called on a stall, after the next tick is scheduled again: replace the stuck BullMQ worker. */
  onStalled?: (overdueMs: number) => void;
}

/**
 * The BullMQ job scheduler behind the liveness tick (ack/job timeouts, failover, offline
 * marking, recount) lives in Redis. A Redis that comes back without its data (a restart
 * without persistence, FLUSHALL, a failover to an empty replica) loses it, and with it every
 * timeout for good. So each worker ensures it exists: at start, every `checkEveryMs`, and
 * whenever its Redis connection becomes ready again. A scheduler found missing and created
 * again counts in `sb_liveness_scheduler_restored_total` and is said in one line.
 */
export class LivenessSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<boolean> | null = null;
  private closed = false;
  private readonly onReady = () => void this.ensure().catch(() => undefined);
  /** Whether the scheduler existed at the last check (false until the first one). */
  present = false;

  constructor(
    private readonly queue: Queue,
    private readonly redis: RedisClient,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly options: LivenessScheduleOptions,
  ) {}

  /** Creates the scheduler (if missing) and starts watching it. */
  async start(): Promise<void> {
    await this.ensure(true);
    this.timer = setInterval(this.onReady, this.options.checkEveryMs);
    this.timer.unref();
    this.redis.on('ready', this.onReady);
  }

  /** True when the scheduler exists in Redis now (throws when Redis cannot answer). */
  async exists(): Promise<boolean> {
    return (await this.queue.getJobScheduler(LIVENESS_SCHEDULER_ID)) !== undefined;
  }

  /**
   * Creates the scheduler when it is missing; resolves true when it had to. One check at a
   * time; a Redis error rejects (the next check tries again).
   */
  ensure(first = false): Promise<boolean> {
    this.running ??= this.check(first).finally(() => (this.running = null));
    return this.running;
  }

  private lastStall = 0;

  private async check(first: boolean): Promise<boolean> {
    if (this.closed) return false;
    const scheduler = await this.queue.getJobScheduler(LIVENESS_SCHEDULER_ID);
    if (scheduler) {
      this.present = true;
      const now = Date.now();
      const stallMs = this.options.stallMs ?? 4 * this.options.everyMs + 2000;
      const overdue = now - Number(scheduler.next ?? now);
      // one recovery per stall period: the replaced worker needs a tick or two to pick up
      if (overdue > stallMs && now - this.lastStall > stallMs) {
        this.lastStall = now;
        await this.upsert(); // adds the next tick job if it was lost (no-op for one that exists)
        this.metrics.livenessStalls.inc();
        this.log.warn(
          { scheduler: LIVENESS_SCHEDULER_ID, overdueMs: overdue },
          'liveness tick overdue (its next job lost, or the worker stuck on a dead connection): scheduled again and the liveness worker replaced',
        );
        this.options.onStalled?.(overdue);
      }
      return false;
    }
    this.present = false;
    await this.upsert();
    this.present = true;
    if (!first) {
      this.metrics.schedulerRestored.inc();
      this.log.warn(
        { scheduler: LIVENESS_SCHEDULER_ID },
        'liveness scheduler was missing from Redis (did it restart without its data?): created again',
      );
    }
    return !first;
  }

  private async upsert(): Promise<void> {
    await this.queue.upsertJobScheduler(
      LIVENESS_SCHEDULER_ID,
      { every: this.options.everyMs },
      {
        name: LIVENESS_SCHEDULER_ID,
        opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
      },
    );
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.redis.off('ready', this.onReady);
  }
}
