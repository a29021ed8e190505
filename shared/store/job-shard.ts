import { randomUUID } from 'node:crypto';
import { JOB_INDEX_CAP, type KeyBuilder } from '../keys.ts';
import type { JobAttempt, JobStatus, JobView } from '../protocol/client-messages.ts';
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

type Partials = NonNullable<JobView['partials']>;

/** One line of a job listing (`GET /v1/jobs?list=`). */
export interface JobSummary {
  job_id: string;
  status: string;
  node_id: string | null;
  attempt_id: number | null;
  created_at: number | null;
  finished_at: number | null;
  /** "src:tgt" as requested */
  pair: string | null;
  error: { code?: string; message?: string } | null;
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
   * `from`, while unconfirmed) with the new answer; extends the placing deadline. False: the job
   * moved on (recovery dropped it).
   */
  async repoint(jobId: string, from: string, to: string, answer: unknown): Promise<Claim | null> {
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
    );
    return done === 1 ? { token: '', deadline } : null;
  }

  /** dropJob-2.lua: gives the id back if the job is still attempt 1 on `nodeId`, unconfirmed. */
  async drop(jobId: string, nodeId: string): Promise<boolean> {
    return (await this.redis.dropJob(this.keys.job(jobId), this.placingKey(jobId), jobId, nodeId)) === 1;
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

  /**
   * The newest jobs (`recent`: by creation) or the latest failed ones (`failed`: by finish) over
   * every job shard, newest first, at most `limit`; with `tenant`, only that tenant's. Reads the
   * shards' indexes (JOB_INDEX_CAP ids each), then the records: ids whose record expired are
   * left out.
   */
  async list(kind: 'recent' | 'failed', limit: number, tenant?: string): Promise<JobSummary[]> {
    const fetch = tenant === undefined ? limit : Math.min(limit * 4, JOB_INDEX_CAP);
    const perShard = await Promise.all(
      Array.from({ length: this.keys.shards }, (_, shard) =>
        this.redis.zrevrange(this.keys.jobIndexes(shard)[kind], 0, fetch - 1, 'WITHSCORES'),
      ),
    );
    const ids: { id: string; at: number }[] = [];
    for (const flat of perShard)
      for (let i = 0; i + 1 < flat.length; i += 2) ids.push({ id: flat[i]!, at: Number(flat[i + 1]) });
    ids.sort((a, b) => b.at - a.at || (a.id < b.id ? -1 : 1));
    const out: JobSummary[] = [];
    for (let from = 0; from < ids.length && out.length < limit; from += limit) {
      const batch = ids.slice(from, from + limit);
      const rows = await Promise.all(
        batch.map(({ id }) =>
          this.redis.hmget(
            this.keys.job(id),
            'status',
            'node_id',
            'attempt_id',
            'created_at',
            'finished_at',
            'request',
            'error',
            'tenant',
          ),
        ),
      );
      for (const [i, [status, node, attempt, created, finished, request, error, owner]] of rows.entries()) {
        if (!status || (tenant !== undefined && owner && owner !== tenant)) continue;
        if (out.length >= limit) break;
        out.push({
          job_id: batch[i]!.id,
          status,
          node_id: node || null,
          attempt_id: attempt ? Number(attempt) : null,
          created_at: created ? Number(created) : null,
          finished_at: finished ? Number(finished) : null,
          pair: pairOf(request ?? null),
          error: error ? (JSON.parse(error) as JobSummary['error']) : null,
        });
      }
    }
    return out;
  }

  /** The request a job was submitted with (JSON as accepted); null when unknown or another tenant's. */
  async request(jobId: string, tenant?: string): Promise<unknown> {
    const [request, owner] = await this.redis.hmget(this.keys.job(jobId), 'request', 'tenant');
    if (!request || (tenant !== undefined && owner && owner !== tenant)) return null;
    return JSON.parse(request) as unknown;
  }

  /**
   * The job as its client sees it; null when unknown or, with `tenant`, another tenant's (a
   * job without one, made with auth off, is anyone's).
   */
  async view(jobId: string, tenant?: string): Promise<JobView | null> {
    const h = await this.redis.hgetall(this.keys.job(jobId));
    if (!h['status']) return null;
    if (tenant !== undefined && h['tenant'] && h['tenant'] !== tenant) return null;
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

  private placingKey(jobId: string): string {
    return this.keys.placing(this.keys.jobShardOf(jobId));
  }
}

/** A claim's token: what recovery's fence names, so that it refuses only that claim's reservation. */
function randomToken(): string {
  return randomUUID().slice(0, 13);
}

function pairOf(request: string | null): string | null {
  if (!request) return null;
  try {
    const r = JSON.parse(request) as { src_lang?: unknown; tgt_lang?: unknown };
    return typeof r.src_lang === 'string' && typeof r.tgt_lang === 'string'
      ? `${r.src_lang}:${r.tgt_lang}`
      : null;
  } catch {
    return null;
  }
}
