import { JOB_INDEX_CAP, type KeyBuilder } from '../keys.ts';
import type { JobAttempt, JobStatus, JobView } from '../protocol/client-messages.ts';
import type { RedisClient } from '../redis-client.ts';

/**
 * The read side of the job shard (`{p:j<k>}`): a job as its client sees it, its request, its
 * partials, its placement span, and the listings over every shard's indexes. Nothing here
 * writes; the scripts that do are JobShardStore's (job-shard.ts) and JobRecordStore's
 * (job-record.ts).
 */

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

export class JobReadStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
  ) {}

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

  /** The job's placement span (its record's `traceparent`, written at the claim); null when none. */
  traceparent(jobId: string): Promise<string | null> {
    return this.redis.hget(this.keys.job(jobId), 'traceparent');
  }
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
