import { createHash } from 'node:crypto';
import type { SwitchboardError } from '../errors.ts';
import { JOB_DEFAULTS, type JobRequest } from './client-messages.ts';

/**
 * Every frame Switchboard sends to a node, built here and nowhere else: node_register_ack,
 * job_assign, job_cancel and error (PROTOCOL.md "gateway → node"). job_assign carries every
 * field the lingua node client reads, with the client's types (test/fixtures/lingua/
 * job-assign-reads.json): strings are strings, never null, where the client says string.
 */

export interface RegisterAck {
  type: 'node_register_ack';
  node_id: string;
  message: 'registered';
  status: string;
  node_token?: string;
  heartbeat_interval_ms: number;
  node_ttl_ms: number;
}

export function registerAckFrame(fields: Omit<RegisterAck, 'type' | 'message'>): RegisterAck {
  return { type: 'node_register_ack', message: 'registered', ...fields };
}

export function errorFrame(err: Pick<SwitchboardError, 'code' | 'message'>): string {
  return JSON.stringify({ type: 'error', code: err.code, message: err.message });
}

export type CancelReason = 'ack_timeout' | 'job_timeout' | 'node_offline';

export function jobCancelFrame(jobId: string, attemptId: number, reason: CancelReason): string {
  return JSON.stringify({ type: 'job_cancel', job_id: jobId, attempt_id: attemptId, reason });
}

/** Where the job_assign frame points a node's trace. */
export interface AssignTrace {
  /** the placement trace's id (tracing on), else null */
  traceId: string | null;
  traceparent: string | null;
}

/** What the selector decided for the job besides the request. */
export interface AssignContext {
  jobId: string;
  attemptId: number;
  /** session_id and utterance_index as allocated (SessionStore) */
  sessionId: string;
  utteranceIndex: number;
  /** the job's deadline after acceptance, ms */
  timeoutMs: number;
  trace: AssignTrace;
}

/** The pipeline flags Switchboard defaults when the request leaves them out. */
type DefaultFlag = keyof typeof JOB_DEFAULTS.pipeline;

/**
 * Every pipeline flag: the five defaulted ones (always present), plus every other `use_*` flag
 * the request set (`use_phonetic`, `use_lexicon`, …) as given; a null flag is left out.
 */
export function pipelineFlags(pipeline: JobRequest['pipeline']): Record<string, boolean> {
  const p = (pipeline ?? {}) as Record<string, boolean | null | undefined>;
  const out: Record<string, boolean> = {};
  for (const [name, fallback] of Object.entries(JOB_DEFAULTS.pipeline) as [DefaultFlag, boolean][]) {
    out[name] = p[name] ?? fallback;
  }
  for (const [name, on] of Object.entries(p)) {
    if (!(name in out) && typeof on === 'boolean') out[name] = on;
  }
  return out;
}

/**
 * trace_id, always a string: the placement trace's id, else the caller's `trace_id` (payload),
 * else one derived from the job id (the same for every attempt of the job).
 */
export function assignTraceId(
  jobId: string,
  traceId: string | null,
  payload: Record<string, unknown>,
): string {
  if (traceId) return traceId;
  const given = payload['trace_id'];
  if (typeof given === 'string' && given !== '') return given;
  return createHash('sha256').update(jobId).digest('hex').slice(0, 32);
}

const str = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);
const num = (v: unknown, fallback: number): number =>
  typeof v === 'number' && Number.isFinite(v) ? v : fallback;

/**
 * job_assign: the client's payload merged in, Switchboard's own fields win. The fields the
 * lingua client (and the original scheduler's serde types) cannot do without are always
 * present with their types: audio "" / audio_format "pcm16" / sample_rate 16000 when the
 * payload has none.
 */
export function jobAssignFrame(req: JobRequest, ctx: AssignContext): string {
  const payload = req.payload ?? {};
  return JSON.stringify({
    ...payload,
    type: 'job_assign',
    job_id: ctx.jobId,
    attempt_id: ctx.attemptId,
    session_id: ctx.sessionId,
    utterance_index: ctx.utteranceIndex,
    src_lang: req.src_lang,
    tgt_lang: req.tgt_lang,
    dialect: typeof payload['dialect'] === 'string' ? payload['dialect'] : null,
    features: req.features ?? undefined,
    auto_langs: req.auto_langs ?? undefined,
    pipeline: pipelineFlags(req.pipeline),
    audio: str(payload['audio'], ''),
    audio_format: str(payload['audio_format'], 'pcm16'),
    sample_rate: num(payload['sample_rate'], 16000),
    timeout_ms: ctx.timeoutMs,
    trace_id: assignTraceId(ctx.jobId, ctx.trace.traceId, payload),
    traceparent: ctx.trace.traceparent ?? undefined,
  });
}
