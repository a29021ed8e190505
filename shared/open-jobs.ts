import type { KeyBuilder } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

/**
 * How long past a slot's own deadline the job sweep (services/worker/job-sweep.ts) waits before
 * it judges the slot lost: the node-side timeouts, run by the same liveness tick, release it
 * first (a few ticks, and a second for a slow one).
 */
export function sweepMarginMs(reaperIntervalMs: number): number {
  return 4 * reaperIntervalMs + 1000;
}

/**
 * The open-jobs index (`{sb:j<k>}:open`): unfinished job → when the job sweep looks at it. A
 * placed job enters it with its ack deadline plus the margin; failoverJob-3.lua re-arms it, and
 * the sweep takes it out once the job is terminal or gone.
 */
export class OpenJobs {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly firstLookMs: number,
  ) {}

  /** A job just placed (its first attempt reserved on a node). */
  async opened(jobId: string, now = Date.now()): Promise<void> {
    await this.redis.zadd(this.keys.openJobs(this.keys.jobShardOf(jobId)), now + this.firstLookMs, jobId);
  }
}
