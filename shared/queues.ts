import { Queue, type ConnectionOptions } from 'bullmq';
import { isRedisUnavailable } from './errors.ts';
import type { KeyBuilder } from './keys.ts';
import type { Logger } from './logger.ts';

/**
 * The derived-work queues: the contract between the gateway (producer) and the worker
 * (consumer). BullMQ prefix is `KeyBuilder.queuePrefix` (`{sbq}` by default: hash-tagged, so
 * each queue lives in one Cluster slot and BullMQ's multi-key scripts never hit CROSSSLOT).
 *
 * `snapshot-flush` — job name `snapshot-flush`, data SnapshotFlushJob. Added when a script
 *   reports that the shard's dirty set went from empty to non-empty; not delayed (the job waits
 *   SB_FLUSH_DELAY_MS itself before its first round, to batch: a delayed BullMQ job is fetched
 *   late by a worker whose other jobs run long, and flush jobs hold a busy shard for up to 1 s);
 *   deduplicated per shard with `keepLastIfActive`. The consumer takes the dirty set in rounds,
 *   so one job covers every node dirtied before and while it runs. A dirty set
 *   left non-empty without a job (the producer crashed between script and enqueue) is swept by
 *   the worker's periodic tick.
 *
 * `liveness` — job name `liveness-tick`, no data: a BullMQ job scheduler every
 *   SB_REAPER_INTERVAL_MS, so the reaper runs once per tick however many workers run.
 */

export const QUEUE_SNAPSHOT_FLUSH = 'snapshot-flush';
export const QUEUE_LIVENESS = 'liveness';
/**
 * `failover` — job name `failover`, data FailoverJob: the worker found an attempt timed out
 * and the job may try again; a SELECTOR places the next attempt (it holds the snapshot).
 * Deduplicated per job and attempt.
 */
export const QUEUE_FAILOVER = 'failover';

export interface FailoverJob {
  jobId: string;
  /** The attempt to place (the timed-out one + 1). */
  attempt: number;
  /** Nodes already tried: never chosen again for this job. */
  exclude: string[];
}
export const LIVENESS_SCHEDULER_ID = 'liveness-tick';

export interface SnapshotFlushJob {
  shard: number;
  /** Server time (ms) the dirty set became non-empty; for staleness metrics. */
  seenAt: number;
}

/** Keep a little history; retry transient failures (Redis blips) with backoff. */
const JOB_OPTIONS = {
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 1000 },
  attempts: 5,
  backoff: { type: 'exponential', delay: 200 },
} as const;

export class DerivedWorkQueues {
  readonly snapshotFlush: Queue<SnapshotFlushJob>;
  readonly failover: Queue<FailoverJob>;

  constructor(connection: ConnectionOptions, keys: KeyBuilder, log: Logger) {
    const opts = { connection, prefix: keys.queuePrefix };
    this.snapshotFlush = new Queue<SnapshotFlushJob>(QUEUE_SNAPSHOT_FLUSH, opts);
    this.failover = new Queue<FailoverJob>(QUEUE_FAILOVER, opts);
    for (const queue of [this.snapshotFlush, this.failover])
      logQueueErrors(queue, log, { queue: queue.name }, 'queue error');
  }

  /** A flush of the shard: waits behind an active one, never beside it. */
  async requestFlush(shard: number): Promise<void> {
    await this.snapshotFlush.add(
      QUEUE_SNAPSHOT_FLUSH,
      { shard, seenAt: Date.now() },
      { ...JOB_OPTIONS, deduplication: { id: `shard:${shard}`, keepLastIfActive: true } },
    );
  }

  async requestFailover(job: FailoverJob): Promise<void> {
    await this.failover.add(QUEUE_FAILOVER, job, {
      ...JOB_OPTIONS,
      deduplication: { id: `job:${job.jobId}:${job.attempt}` },
    });
  }

  /** Whether a failover for this attempt is queued (waiting, delayed, active or retrying). */
  async failoverQueued(jobId: string, attempt: number): Promise<boolean> {
    return (await this.failover.getDeduplicationJobId(`job:${jobId}:${attempt}`)) !== null;
  }

  async close(): Promise<void> {
    await Promise.all([this.snapshotFlush.close(), this.failover.close()]);
  }
}

/**
 * Logs the errors a BullMQ queue or worker emits, but for an unreachable Redis: BullMQ emits
 * that on every retry of every connection (and, with no listener, prints each stack trace),
 * while the service's RedisReachability already says it once.
 */
export function logQueueErrors(
  emitter: { on(event: 'error', listener: (err: Error) => void): unknown },
  log: Logger,
  fields: Record<string, unknown>,
  msg: string,
): void {
  emitter.on('error', (err: Error) => {
    if (!isRedisUnavailable(err)) log.warn({ ...fields, err: err.message }, msg);
  });
}
