import { JOB_INDEX_CAP, type KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';

/**
 * A placed job's record as its attempts move it (`{p:j<k>}`): the node's progress
 * (advanceJob-2.lua), its partials (appendPartial-2.lua), a timed-out attempt's failover
 * (failoverJob-3.lua) and the worker's sweep of the shard's open jobs (sweepJob-2.lua). The one
 * place that builds their keys, packs their arguments and names their return codes; each of
 * these scripts ends with SPUBLISH on the shard's events channel (job-events.ts).
 */

export type AdvanceStatus = 'accepted' | 'running' | 'finished' | 'failed';

/** advanceJob-2.lua's codes: 1 applied, 0 already there or past it, -1 not the current attempt/node, -2 no record. */
export type AdvanceOutcome = 'applied' | 'duplicate' | 'stale';

export type FailoverReason = 'ack_timeout' | 'job_timeout' | 'node_offline' | 'slot_lost';

export interface FailoverRequest {
  jobId: string;
  /** the attempt that timed out */
  attempt: number;
  reason: FailoverReason;
  now: number;
  /** SB_MAX_ATTEMPTS */
  maxAttempts: number;
  /** when the sweep looks at the job again while its next attempt is asked for, ms */
  nextSweepAt: number;
}

/**
 * failoverJob-3.lua's decision: `next` (place attempt + 1 from `request`, away from `tried`),
 * `failed` (that was the last attempt allowed: the job is failed with JOB_TIMEOUT), `none` (the
 * job moved on, is terminal or gone: nothing to do).
 */
export type FailoverDecision =
  { kind: 'next'; request: string; tried: string[] } | { kind: 'failed' } | { kind: 'none' };

/** sweepJob-2.lua: the open job's current attempt as the sweep sees it, or closed (terminal/gone). */
export type SweepLook =
  | { open: false }
  | {
      open: true;
      attempt: string;
      node: string;
      attemptStatus: string;
      /** '' when the attempt has not been dispatched */
      dispatchedAt: string;
      /** nodes tried so far (JSON array) */
      tried: string;
    };

export class JobRecordStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
  ) {}

  /** The job's own `timeout_ms`, or null when it named none. */
  async timeoutMs(jobId: string): Promise<number | null> {
    const timeout = Number(await this.redis.hget(this.keys.job(jobId), 'timeout_ms'));
    return timeout > 0 ? timeout : null;
  }

  /** advanceJob-2.lua: the node of the job's current attempt moves it forward (never back). */
  async advance(
    jobId: string,
    attempt: number,
    status: AdvanceStatus,
    nodeId: string,
    result?: unknown,
    error?: unknown,
  ): Promise<AdvanceOutcome> {
    const code = await this.redis.advanceJob(
      this.keys.job(jobId),
      this.keys.jobIndexesOf(jobId).failed,
      attempt,
      status,
      Date.now(),
      result === undefined ? '' : JSON.stringify(result),
      error === undefined || error === null ? '' : JSON.stringify(error),
      nodeId,
      JOB_INDEX_CAP,
      this.keys.jobEventsOf(jobId),
      jobId,
    );
    return code === 1 ? 'applied' : code === 0 ? 'duplicate' : 'stale';
  }

  /**
   * appendPartial-2.lua: an asr_partial of the job's current node while the job is not terminal
   * (the stream capped at about `cap` entries); false when ignored.
   */
  async appendPartial(
    jobId: string,
    nodeId: string,
    text: string,
    isFinal: boolean,
    cap: number,
  ): Promise<boolean> {
    const code = await this.redis.appendPartial(
      this.keys.job(jobId),
      this.keys.partials(jobId),
      nodeId,
      text,
      isFinal ? '1' : '0',
      Date.now(),
      cap,
      this.keys.jobEventsOf(jobId),
      jobId,
    );
    return code === 1;
  }

  /** failoverJob-3.lua: marks the attempt timed out and decides what comes next. */
  async failover(f: FailoverRequest): Promise<FailoverDecision> {
    const decision = await this.redis.failoverJob(
      this.keys.job(f.jobId),
      this.keys.openJobs(this.keys.jobShardOf(f.jobId)),
      this.keys.jobIndexesOf(f.jobId).failed,
      f.attempt,
      f.reason,
      f.now,
      f.maxAttempts,
      f.jobId,
      f.nextSweepAt,
      JOB_INDEX_CAP,
      this.keys.jobEventsOf(f.jobId),
    );
    if (decision[0] === 1)
      return { kind: 'next', request: decision[1], tried: JSON.parse(decision[2]) as string[] };
    return decision[0] === 2 ? { kind: 'failed' } : { kind: 'none' };
  }

  /** The open jobs of a job shard whose sweep is due by `now`, at most `limit`. */
  dueOpen(jobShard: number, now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.openJobs(jobShard), '-inf', now, 'LIMIT', 0, limit);
  }

  /** sweepJob-2.lua: the open job's current attempt; a terminal or missing job leaves the index. */
  async sweepLook(jobId: string): Promise<SweepLook> {
    const seen = await this.redis.sweepJob(this.keys.job(jobId), this.openKey(jobId), jobId);
    if (seen[0] === 0) return { open: false };
    const [, attempt, node, attemptStatus, dispatchedAt, tried] = seen;
    return { open: true, attempt, node, attemptStatus, dispatchedAt, tried };
  }

  /** The sweep's next look at an open job (only while it is still in the index). */
  async sweepAgainAt(jobId: string, at: number): Promise<void> {
    await this.redis.zadd(this.openKey(jobId), 'XX', at, jobId);
  }

  private openKey(jobId: string): string {
    return this.keys.openJobs(this.keys.jobShardOf(jobId));
  }
}
