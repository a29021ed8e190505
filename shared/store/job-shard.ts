import { randomUUID } from 'node:crypto';
import { JOB_INDEX_CAP, type KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';

/**
 * The job shard (`{p:j<k>}`): job records, the placing set of each shard, and the scripts that
 * claim, re-point, drop and re-attempt a job. The one place that builds their keys, packs their
 * arguments and names their return codes.
 */

/** What a job's attempts all carry in job_assign: its session, utterance index and deadline. */
export interface JobSession {
  sessionId: string;
  utteranceIndex: number;
  timeoutMs: number;
}

export interface ClaimRequest {
  jobId: string;
  /** the request as accepted */
  request: unknown;
  /** whose job it is ('' = nobody's: auth off) */
  tenant: string;
  /** the node of attempt 1 */
  nodeId: string;
  /** the answer a repeated request gets (JSON-able) */
  answer: unknown;
  /** the placement span's traceparent, for later attempts to join the job's trace */
  traceparent: string | null;
  /** session and deadline; utteranceIndex null = allocated after the claim (setUtteranceIndex) */
  session: { sessionId: string; utteranceIndex: number | null; timeoutMs: number };
}

/** An unconfirmed placement's handle: what recovery fences, and until when it is left alone. */
export interface Claim {
  token: string;
  deadline: number;
}

/** The job that holds an id. */
export interface ExistingJob {
  status: string;
  /** the answer kept for repeats ('' for a record written before answers were kept at claim) */
  answer: string;
  tenant: string;
  /** deadline of its placement while unconfirmed; null once settled */
  placingUntil: number | null;
}

export type ClaimResult = ({ claimed: true } & Claim) | ({ claimed: false } & ExistingJob);

/** A placement as recovery sees it. */
export interface PlacingState extends ExistingJob {
  nodeId: string | null;
  attemptId: number | null;
  claimToken: string;
}

export interface JobShardOptions {
  /** SB_JOB_RETENTION_MS */
  retentionMs: number;
  /**
   * How long a live placement may take from its claim (or a re-point) to its reservation;
   * past it, recovery settles it (placed, or dropped and the id retryable).
   */
  placingWindowMs: number;
  /** How long confirmations are gathered into one ZREM per job shard. */
  confirmBatchMs?: number;
  /**
   * When the worker's job sweep first looks at a placed job (its `:open` entry, made by the
   * claim): SB_ACK_TIMEOUT_MS + the sweep's margin (shared/open-jobs.ts).
   */
  openLookMs: number;
}

export class JobShardStore {
  private readonly confirmations = new Map<number, Set<string>>();
  private confirmTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly options: JobShardOptions,
  ) {}

  get placingWindowMs(): number {
    return this.options.placingWindowMs;
  }

  /**
   * claimJob-4.lua: claims the id AND records attempt 1 on `nodeId` (status `dispatched`, the
   * answer kept, the job in its shard's placing set), or reports the job that holds the id.
   */
  async claim(c: ClaimRequest): Promise<ClaimResult> {
    const now = Date.now();
    const token = randomToken();
    const deadline = now + this.options.placingWindowMs;
    const [code, status, answer, tenant, placingUntil] = await this.redis.claimJob(
      this.keys.job(c.jobId),
      this.placingKey(c.jobId),
      this.keys.openJobs(this.keys.jobShardOf(c.jobId)),
      this.keys.jobIndexesOf(c.jobId).recent,
      c.jobId,
      now,
      JSON.stringify(c.request),
      this.options.retentionMs,
      c.tenant,
      c.nodeId,
      JSON.stringify(c.answer),
      deadline,
      token,
      c.traceparent ?? '',
      c.session.sessionId,
      c.session.utteranceIndex ?? '',
      c.session.timeoutMs,
      now + this.options.openLookMs,
      JOB_INDEX_CAP,
    );
    if (code === 1) return { claimed: true, token, deadline };
    return {
      claimed: false,
      status: status ?? '',
      answer: answer ?? '',
      tenant: tenant ?? '',
      placingUntil: placingUntil ? Number(placingUntil) : null,
    };
  }

  /**
   * repointJob-2.lua: attempt 1's reservation was refused on `from`: point it at `to` (CAS on
   * `from` and on the claim's token, while unconfirmed) with the new answer; extends the placing
   * deadline. Null: the job moved on (recovery dropped it; the id may be claimed anew since).
   */
  async repoint(
    jobId: string,
    claimToken: string,
    from: string,
    to: string,
    answer: unknown,
  ): Promise<Claim | null> {
    const now = Date.now();
    const deadline = now + this.options.placingWindowMs;
    const done = await this.redis.repointJob(
      this.keys.job(jobId),
      this.placingKey(jobId),
      jobId,
      from,
      to,
      now,
      JSON.stringify(answer),
      deadline,
      claimToken,
    );
    return done === 1 ? { token: claimToken, deadline } : null;
  }

  /**
   * dropJob-2.lua: gives the id back if the job is still the claim `claimToken`, attempt 1 on
   * `nodeId`, unconfirmed. A later claim of the same id (a resolver's view went stale: the claim
   * it read was dropped, and a repeated request claimed the id again) is never dropped.
   */
  async drop(jobId: string, nodeId: string, claimToken: string): Promise<boolean> {
    return (
      (await this.redis.dropJob(this.keys.job(jobId), this.placingKey(jobId), jobId, nodeId, claimToken)) ===
      1
    );
  }

  /**
   * The placement is confirmed (its reservation exists): out of the placing set. Gathered per
   * job shard into one ZREM every few ms; one lost (a crash) is settled by recovery as placed.
   */
  confirm(jobId: string): void {
    const shard = this.keys.jobShardOf(jobId);
    let pending = this.confirmations.get(shard);
    if (!pending) this.confirmations.set(shard, (pending = new Set()));
    pending.add(jobId);
    this.confirmTimer ??= setTimeout(() => void this.flushConfirmations(), this.options.confirmBatchMs ?? 20);
    this.confirmTimer.unref();
  }

  /** Sends the gathered confirmations now (also on close). */
  async flushConfirmations(): Promise<void> {
    clearTimeout(this.confirmTimer);
    this.confirmTimer = undefined;
    const batches = [...this.confirmations];
    this.confirmations.clear();
    await Promise.all(
      batches.map(([shard, ids]) => this.redis.zrem(this.keys.placing(shard), ...ids).catch(() => undefined)),
    );
  }

  /** The job as recovery and repeated requests see it; null when there is none. */
  async placingState(jobId: string): Promise<PlacingState | null> {
    const results = await this.redis
      .multi()
      .hmget(this.keys.job(jobId), 'status', 'placement', 'tenant', 'node_id', 'attempt_id', 'claim')
      .zscore(this.placingKey(jobId), jobId)
      .exec();
    const [[hErr, h] = [null, null], [zErr, until] = [null, null]] = results ?? [];
    if (hErr) throw hErr;
    if (zErr) throw zErr;
    const [status, answer, tenant, nodeId, attemptId, claim] = (h ?? []) as (string | null)[];
    if (!status) {
      // a record gone (expired, dropped) may leave its id in the placing set
      if (until !== null) await this.redis.zrem(this.placingKey(jobId), jobId);
      return null;
    }
    return {
      status,
      answer: answer ?? '',
      tenant: tenant ?? '',
      placingUntil: until === null || until === undefined ? null : Number(until),
      nodeId: nodeId ?? null,
      attemptId: attemptId ? Number(attemptId) : null,
      claimToken: claim ?? '',
    };
  }

  /** Out of the placing set: the job moved on (acked, failed over, finished). */
  async settled(jobId: string): Promise<void> {
    await this.redis.zrem(this.placingKey(jobId), jobId);
  }

  /** Up to `limit` ids of `jobShard` whose placing deadline passed. */
  placingDue(jobShard: number, now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.placing(jobShard), '-inf', now, 'LIMIT', 0, limit);
  }

  /** A session job's utterance index, allocated after its claim (what failover attempts reuse). */
  async setUtteranceIndex(jobId: string, index: number): Promise<void> {
    await this.redis.hset(this.keys.job(jobId), 'utterance_index', index);
  }

  /** What a failover attempt needs from the record. */
  async failoverState(jobId: string): Promise<{
    request: string | null;
    status: string | null;
    attemptId: number | null;
    traceparent: string | null;
    sessionId: string | null;
    utteranceIndex: number;
    timeoutMs: number | null;
  }> {
    const [request, status, attempt, traceparent, sessionId, utterance, timeout] = await this.redis.hmget(
      this.keys.job(jobId),
      'request',
      'status',
      'attempt_id',
      'traceparent',
      'session_id',
      'utterance_index',
      'timeout_ms',
    );
    return {
      request: request ?? null,
      status: status ?? null,
      attemptId: attempt === null || attempt === undefined ? null : Number(attempt),
      traceparent: traceparent ?? null,
      sessionId: sessionId || null,
      utteranceIndex: Number(utterance ?? 0),
      timeoutMs: timeout ? Number(timeout) : null,
    };
  }

  /**
   * recordAttempt-2.lua: points attempt `attemptId` (replacing `previous`) at `nodeId` before
   * it is reserved there. False: the job moved on.
   */
  async recordAttempt(jobId: string, previous: number, attemptId: number, nodeId: string): Promise<boolean> {
    return (
      (await this.redis.recordAttempt(
        this.keys.job(jobId),
        this.keys.jobIndexesOf(jobId).failed,
        previous,
        attemptId,
        nodeId,
        Date.now(),
        '',
        JOB_INDEX_CAP,
      )) === 1
    );
  }

  /** recordAttempt-2.lua with no node: no node can take attempt `attemptId`, the job fails. */
  async failAttempt(
    jobId: string,
    previous: number,
    attemptId: number,
    error: { code: string; message: string },
  ): Promise<boolean> {
    return (
      (await this.redis.recordAttempt(
        this.keys.job(jobId),
        this.keys.jobIndexesOf(jobId).failed,
        previous,
        attemptId,
        '',
        Date.now(),
        JSON.stringify(error),
        JOB_INDEX_CAP,
      )) === 1
    );
  }

  private placingKey(jobId: string): string {
    return this.keys.placing(this.keys.jobShardOf(jobId));
  }
}

/** A claim's token: what recovery's fence names, so that it refuses only that claim's reservation. */
function randomToken(): string {
  return randomUUID().slice(0, 13);
}
