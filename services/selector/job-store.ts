import type { KeyBuilder } from '../../shared/keys.ts';
import type { JobAttempt, JobStatus, JobView } from '../../shared/protocol/client-messages.ts';
import type { RedisClient } from '../../shared/redis-client.ts';

export type ClaimResult = { claimed: true } | { claimed: false; status: string; placement: string };

/** The selector's door to job records (job shards `{p:j<k>}`). */
export class JobStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly retentionMs: number,
    /**
     * A claim still `created` this long after it was made was abandoned: its placement failed
     * (a Redis error or timeout) after the claim executed. The next request with the job_id
     * claims it again instead of hearing "still being placed" until the record expires. 0: never.
     */
    private readonly abandonedAfterMs = 0,
  ) {}

  async claim(jobId: string, request: unknown): Promise<ClaimResult> {
    const now = Date.now();
    const [code, status, placement] = await this.redis.createJob(
      this.keys.job(jobId),
      jobId,
      now,
      JSON.stringify(request),
      this.retentionMs,
      this.abandonedAfterMs > 0 ? now - this.abandonedAfterMs : 0,
    );
    return code === 1
      ? { claimed: true }
      : { claimed: false, status: status ?? '', placement: placement ?? '' };
  }

  /** Gives the id back (no node could take the job): the client may retry with it. */
  async release(jobId: string): Promise<void> {
    await this.redis.del(this.keys.job(jobId));
  }

  /** `traceparent`: the placement span's, for later attempts (failover) to join the job's trace. */
  /**
   * Points the job at `nodeId` for its first attempt BEFORE the reservation hands the node the
   * assignment: the node may ack and answer within microseconds, and its progress is checked
   * against this record (attempt and node). A reservation conflict re-points it.
   */
  async assign(
    jobId: string,
    nodeId: string,
    attemptId: number,
    traceparent: string | null = null,
  ): Promise<void> {
    const now = Date.now();
    const attempts: JobAttempt[] = [{ attempt_id: attemptId, node_id: nodeId, status: 'dispatched' }];
    await this.redis.hset(this.keys.job(jobId), {
      status: 'dispatched',
      node_id: nodeId,
      attempt_id: attemptId,
      attempts: JSON.stringify(attempts),
      reserved_at: now,
      dispatched_at: now,
      ...(traceparent ? { traceparent } : {}),
    });
  }

  /** The answer a repeated request with this job_id gets; written once the job is placed. */
  async recordPlacement(jobId: string, placement: unknown): Promise<void> {
    await this.redis.hset(this.keys.job(jobId), 'placement', JSON.stringify(placement));
  }

  async placement(jobId: string): Promise<{ status: string | null; placement: string | null }> {
    const [status, placement] = await this.redis.hmget(this.keys.job(jobId), 'status', 'placement');
    return { status: status ?? null, placement: placement ?? null };
  }

  async view(jobId: string): Promise<JobView | null> {
    const h = await this.redis.hgetall(this.keys.job(jobId));
    if (!h['status']) return null;
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    const view: JobView = {
      job_id: jobId,
      status: h['status'] as JobStatus,
      node_id: h['node_id'] ?? null,
      attempt_id: num(h['attempt_id']) ?? null,
      attempts: h['attempts'] ? (JSON.parse(h['attempts']) as JobAttempt[]) : [],
      created_at: Number(h['created_at']),
    };
    for (const field of ['dispatched_at', 'accepted_at', 'started_at', 'finished_at'] as const) {
      if (h[field] !== undefined) view[field] = Number(h[field]);
    }
    if (h['result']) view.result = JSON.parse(h['result']) as unknown;
    if (h['error']) view.error = JSON.parse(h['error']) as JobView['error'];
    return view;
  }
}
