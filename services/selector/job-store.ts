import type { KeyBuilder } from '../../shared/keys.ts';
import type { JobAttempt, JobStatus, JobView } from '../../shared/protocol/client-messages.ts';
import type { RedisClient } from '../../shared/redis-client.ts';

/** What a job's attempts all carry in job_assign: its session, utterance index and deadline. */
export interface JobSession {
  sessionId: string;
  utteranceIndex: number;
  timeoutMs: number;
}

type Partials = NonNullable<JobView['partials']>;

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

  /**
   * `traceparent`: the placement span's, for later attempts (failover) to join the job's trace;
   * `session`: what every attempt's job_assign carries, and the deadline the gateway applies.
   * Points the job at `nodeId` for its first attempt BEFORE the reservation hands the node the
   * assignment: the node may ack and answer within microseconds, and its progress is checked
   * against this record (attempt and node). A reservation conflict re-points it.
   */
  async assign(
    jobId: string,
    nodeId: string,
    attemptId: number,
    traceparent: string | null = null,
    session: JobSession | null = null,
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
      ...(session
        ? {
            session_id: session.sessionId,
            utterance_index: session.utteranceIndex,
            timeout_ms: session.timeoutMs,
          }
        : {}),
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
    const partials = await this.partials(jobId, view.attempt_id);
    if (partials.length > 0) view.partials = partials;
    if (h['result']) view.result = JSON.parse(h['result']) as unknown;
    if (h['error']) view.error = JSON.parse(h['error']) as JobView['error'];
    return view;
  }

  /**
   * The asr_partial texts of an attempt in arrival order, each with its stream id; `after` = the
   * last id already seen (exclusive).
   */
  async partialEntries(
    jobId: string,
    attemptId: number | null,
    after = '-',
  ): Promise<{ id: string; partial: Partials[number] }[]> {
    const start = after === '-' ? '-' : `(${after}`;
    const entries = await this.redis.xrange(this.keys.partials(jobId), start, '+', 'COUNT', 1000);
    const out: { id: string; partial: Partials[number] }[] = [];
    for (const [id, fields] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      if (attemptId !== null && Number(f['attempt']) !== attemptId) continue;
      out.push({ id, partial: { text: f['text'] ?? '', is_final: f['final'] === '1', at: Number(f['at']) } });
    }
    return out;
  }

  private async partials(jobId: string, attemptId: number | null): Promise<Partials> {
    return (await this.partialEntries(jobId, attemptId)).map((e) => e.partial);
  }
}
