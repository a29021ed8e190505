import type { Span } from '@opentelemetry/api';
import { jobRequestSchema } from '../../shared/protocol/client-messages.ts';
import { jobAssignFrame, type AssignTrace } from '../../shared/protocol/outbound-frames.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import type { FailoverJob } from '../../shared/queues.ts';
import type { JobSession, JobShardStore } from '../../shared/store/job-shard.ts';
import type { ReserveResult } from '../../shared/store/slots.ts';
import { inSpan, parseTraceparent, remoteParent, traceparentOf } from '../../shared/telemetry.ts';
import { toSelection } from './job-selection.ts';
import { select, type SelectionPolicy } from './selection.ts';
import type { SelectorMetrics } from './selector-metrics.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

export type FailoverOutcome = 'placed' | 'failed' | 'moved_on';

export interface FailoverDeps {
  jobs: JobShardStore;
  index: SnapshotIndex;
  /** the placer's policy, with its known load */
  policy: () => SelectionPolicy;
  /** the placer's reservation (reserveSlot-7.lua in a `job.reserve` span) */
  reserve: (nodeId: string, jobId: string, attemptId: number, frame: string) => Promise<ReserveResult>;
  metrics: SelectorMetrics;
  options: { maxReservationAttempts: number; jobTimeoutMs: number };
}

/**
 * Places the next attempt of a job whose previous attempt timed out (a `failover` job from
 * the worker), on a node not tried yet; with none left, the job fails with JOB_TIMEOUT.
 */
export async function placeFailover(deps: FailoverDeps, job: FailoverJob): Promise<FailoverOutcome> {
  const st = await deps.jobs.failoverState(job.jobId);
  if (!st.request || st.status === 'finished' || st.status === 'failed' || st.attemptId !== job.attempt - 1)
    return 'moved_on';
  const request = st.request;
  // in the job's trace: a child of the placement span that dispatched the first attempt
  return inSpan(
    'job.failover',
    { 'sb.job_id': job.jobId, 'sb.attempt': job.attempt },
    async (span) => {
      const session: JobSession = {
        sessionId: st.sessionId ?? job.jobId,
        utteranceIndex: st.utteranceIndex,
        timeoutMs: st.timeoutMs ?? deps.options.jobTimeoutMs,
      };
      const outcome = await failoverIn(deps, job, request, session, traceRefOf(span, st.traceparent));
      span.setAttribute('sb.outcome', outcome);
      return outcome;
    },
    remoteParent(st.traceparent, null),
  );
}

async function failoverIn(
  deps: FailoverDeps,
  job: FailoverJob,
  requestText: string,
  session: JobSession,
  trace: AssignTrace,
): Promise<FailoverOutcome> {
  const { jobs } = deps;
  const req = parseOrThrow(jobRequestSchema, JSON.parse(requestText));
  const selection = toSelection(req);
  selection.excludeNodeIds = [...selection.excludeNodeIds, ...job.exclude];
  const result = select(deps.index, selection, deps.policy());
  const frame = jobAssignFrame(req, { jobId: job.jobId, attemptId: job.attempt, ...session, trace });
  for (const nodeId of result.ranked.slice(0, deps.options.maxReservationAttempts)) {
    // the record names the attempt and its node before the node can get the assignment
    if (!(await jobs.recordAttempt(job.jobId, job.attempt - 1, job.attempt, nodeId))) return 'moved_on';
    if ((await deps.reserve(nodeId, job.jobId, job.attempt, frame)).held) return 'placed';
    deps.metrics.reservationConflicts.inc();
  }
  await jobs.failAttempt(job.jobId, job.attempt - 1, job.attempt, {
    code: 'JOB_TIMEOUT',
    message: `attempt ${job.attempt - 1} timed out and no other node can take the job: ${result.message}`,
  });
  return 'failed';
}

/** The span's own context when tracing is on; else the caller's `traceparent` passed through. */
export function traceRefOf(span: Span, fallback: string | null | undefined): AssignTrace {
  const own = traceparentOf(span);
  if (own) return { traceId: span.spanContext().traceId, traceparent: own };
  const given = parseTraceparent(fallback);
  return given ? { traceId: given.traceId, traceparent: fallback! } : { traceId: null, traceparent: null };
}
