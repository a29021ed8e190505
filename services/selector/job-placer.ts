import { randomUUID } from 'node:crypto';
import type { Span } from '@opentelemetry/api';
import { SwitchboardError } from '../../shared/errors.ts';
import { JOB_INDEX_CAP, type KeyBuilder } from '../../shared/keys.ts';
import {
  JOB_DEFAULTS,
  jobRequestSchema,
  type JobPlacement,
  type JobRequest,
} from '../../shared/protocol/client-messages.ts';
import { jobAssignFrame, type AssignTrace } from '../../shared/protocol/outbound-frames.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import type { DerivedWorkQueues, FailoverJob } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import {
  inSpan,
  parseTraceparent,
  remoteParent,
  SpanKind,
  stepSpan,
  traceparentOf,
} from '../../shared/telemetry.ts';
import { jobTenant, type Caller } from './api-keys.ts';
import { toSelection } from './job-selection.ts';
import type { JobStore, JobSession } from './job-store.ts';
import { placementCut } from './cut-placement.ts';
import { select, type Breakdown, type SelectionPolicy, type SelectionResult } from './selection.ts';
import { SessionStore } from './session-store.ts';
import type { SelectorMetrics } from './selector-metrics.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

/** reserveSlot-7.lua's codes, as the `sb.outcome` of a `job.reserve` span. */
const RESERVE_OUTCOMES: Record<number, string> = {
  1: 'reserved',
  2: 'already_reserved',
  [-1]: 'node_gone',
  [-2]: 'not_ready',
  [-3]: 'draining',
  [-4]: 'not_live',
  [-5]: 'at_capacity',
};

/** Where the job_assign frame points a node's trace: `trace_id` and the placement span's `traceparent`. */
type TraceRef = AssignTrace;

export interface PlacerOptions {
  policy: Omit<SelectionPolicy, 'knownLoad'>;
  ackTimeoutMs: number;
  nodeTtlMs: number;
  /** Reservation attempts on further candidates after a conflict. */
  maxReservationAttempts: number;
  inboxLength: number;
  /** SB_JOB_TIMEOUT_MS: a job's deadline after acceptance when it gives no timeout_ms */
  jobTimeoutMs: number;
  /** SB_MAX_JOB_TIMEOUT_MS: the largest timeout_ms a job may ask for */
  maxJobTimeoutMs: number;
  /** SB_SESSION_TTL_MS */
  sessionTtlMs: number;
}

export interface PlacementResponse {
  status: 200 | 201;
  body: Record<string, unknown>;
}

/** 503 NO_AVAILABLE_NODE carrying the breakdown (PROTOCOL.md). */
export class NoAvailableNodeError extends SwitchboardError {
  constructor(
    message: string,
    readonly breakdown: Breakdown,
    readonly reservationConflicts = 0,
  ) {
    super('NO_AVAILABLE_NODE', message);
  }
}

interface LiveLoad {
  running: number;
  reserved: number;
  at: number;
}

/**
 * POST /v1/jobs: choose from the in-memory snapshot (pure, no await), then reserve on the
 * chosen node's live record in Redis; on a conflict try the next candidate (bounded).
 */
export class JobPlacer {
  /** What reservation replies told us about nodes, newer than the snapshot. */
  private readonly live = new Map<string, LiveLoad>();
  private readonly sessions: SessionStore;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly index: SnapshotIndex,
    private readonly jobs: JobStore,
    private readonly queues: DerivedWorkQueues,
    private readonly snapshotOf: (shard: number) => { version: number; ageMs: number },
    private readonly metrics: SelectorMetrics,
    private readonly options: PlacerOptions,
  ) {
    this.sessions = new SessionStore(redis, keys, options.sessionTtlMs);
  }

  /**
   * `clientTraceparent`: the request's W3C header. The placement runs in a `job.place` span
   * (a child of the request's span when tracing is on), whose trace id and traceparent go into
   * job_assign and the job record, so the gateway's ack/result spans join the same trace. One
   * child span per step: `job.choose` (in memory), `job.claim`, `job.attempt`, `job.reserve`.
   */
  place(
    body: unknown,
    clientTraceparent: string | null,
    caller: Caller | null = null,
  ): Promise<PlacementResponse> {
    return inSpan('job.place', {}, (span) =>
      this.placeIn(span, body, traceRefOf(span, clientTraceparent), caller),
    );
  }

  private async placeIn(
    span: Span,
    body: unknown,
    trace: TraceRef,
    caller: Caller | null,
  ): Promise<PlacementResponse> {
    const req = parseOrThrow(jobRequestSchema, body);
    const tenant = jobTenant(caller, req.tenant_id) ?? '';
    const dryRun = req.dry_run ?? JOB_DEFAULTS.dry_run;
    const timeoutMs = req.timeout_ms ?? this.options.jobTimeoutMs;
    if (timeoutMs > this.options.maxJobTimeoutMs)
      throw new SwitchboardError(
        'INVALID_MESSAGE',
        `timeout_ms: at most ${this.options.maxJobTimeoutMs} (SB_MAX_JOB_TIMEOUT_MS), got ${timeoutMs}`,
      );
    const givenSession = req.payload?.['session_id'];
    const sessionId = typeof givenSession === 'string' && givenSession !== '' ? givenSession : null;
    const selection = toSelection(req, sessionId === null ? null : await this.sessions.node(sessionId));
    const { result, selectionUs } = this.choose(selection);
    this.metrics.selectionSeconds.observe(selectionUs / 1e6);
    if (span.isRecording()) span.setAttributes({ 'sb.pool': result.pool, 'sb.dry_run': dryRun });
    if (result.ranked.length === 0) throw new NoAvailableNodeError(result.message, result.breakdown);

    const answer = (jobId: string | null, nodeId: string, attemptId: number | null): JobPlacement => {
      const shard = this.keys.shardOf(nodeId);
      const snap = this.snapshotOf(shard);
      span.setAttributes({
        'sb.node_id': nodeId,
        'sb.snapshot.version': snap.version,
        'sb.snapshot.age_ms': snap.ageMs,
      });
      return {
        job_id: jobId,
        attempt_id: attemptId,
        node_id: nodeId,
        pool: result.pool,
        snapshot: { version: snap.version, age_ms: snap.ageMs },
        breakdown: result.breakdown,
        selection_us: selectionUs,
      };
    };
    if (dryRun) return { status: 200, body: { ...answer(null, result.ranked[0]!, null), dry_run: true } };

    const jobId = req.job_id ?? `job-${randomUUID()}`;
    span.setAttribute('sb.job_id', jobId);
    const claim = await inSpan('job.claim', { 'sb.job_id': jobId }, async (s) => {
      const c = await this.jobs.claim(jobId, req, tenant);
      s.setAttribute('sb.outcome', c.claimed ? 'claimed' : 'repeated');
      return c;
    });
    if (!claim.claimed) {
      span.setAttribute('sb.repeated', true);
      if (claim.tenant !== tenant && claim.tenant !== '' && caller?.admin !== true)
        throw new SwitchboardError('JOB_ID_CONFLICT', `job_id: ${jobId} is taken by another tenant's job`);
      return this.existing(jobId, claim.placement);
    }

    const session = await this.sessionOf(req, jobId, sessionId, timeoutMs);
    let conflicts = 0;
    for (const nodeId of result.ranked.slice(0, this.options.maxReservationAttempts)) {
      const placement = answer(jobId, nodeId, 1);
      let reserved = false;
      try {
        await inSpan('job.attempt', { 'sb.job_id': jobId, 'sb.node_id': nodeId, 'sb.attempt': 1 }, () =>
          this.jobs.assign(jobId, nodeId, 1, trace.traceparent, session),
        );
        reserved = await this.reserve(nodeId, jobId, 1, assignFor(req, jobId, 1, session, trace));
        if (reserved) {
          span.setAttribute('sb.reservation_conflicts', conflicts);
          if (sessionId !== null) await this.sessions.bind(sessionId, nodeId);
          await this.jobs.recordPlacement(jobId, placement);
          return {
            status: 201,
            body: conflicts ? { ...placement, reservation_conflicts: conflicts } : placement,
          };
        }
      } catch (err) {
        await placementCut({ redis: this.redis, keys: this.keys, jobs: this.jobs }, err, reserved, {
          jobId,
          nodeId,
          placement,
        });
        throw err;
      }
      conflicts++;
      this.metrics.reservationConflicts.inc();
    }
    span.setAttribute('sb.reservation_conflicts', conflicts);
    await this.jobs.release(jobId);
    throw new NoAvailableNodeError(
      `0/${result.breakdown.total_nodes} nodes available: ${conflicts} reservation_conflict (the candidates filled up since the snapshot)`,
      result.breakdown,
      conflicts,
    );
  }

  /**
   * Places the next attempt of a job whose previous attempt timed out (a `failover` job from
   * the worker), on a node not tried yet; with none left, the job fails with JOB_TIMEOUT.
   */
  async failover(job: FailoverJob): Promise<'placed' | 'failed' | 'moved_on'> {
    const [requestText, status, current, traceparent, sessionId, utterance, timeout] = await this.redis.hmget(
      this.keys.job(job.jobId),
      'request',
      'status',
      'attempt_id',
      'traceparent',
      'session_id',
      'utterance_index',
      'timeout_ms',
    );
    if (!requestText || status === 'finished' || status === 'failed' || Number(current) !== job.attempt - 1)
      return 'moved_on';
    // in the job's trace: a child of the placement span that dispatched the first attempt; a
    // queued job from the worker enters here (CONSUMER)
    return inSpan(
      'job.failover',
      { 'sb.job_id': job.jobId, 'sb.attempt': job.attempt },
      async (span) => {
        const session: JobSession = {
          sessionId: sessionId ?? job.jobId,
          utteranceIndex: Number(utterance ?? 0),
          timeoutMs: Number(timeout ?? this.options.jobTimeoutMs),
        };
        const outcome = await this.failoverIn(job, requestText, session, traceRefOf(span, traceparent));
        span.setAttribute('sb.outcome', outcome);
        return outcome;
      },
      remoteParent(traceparent, null),
      SpanKind.CONSUMER,
    );
  }

  private async failoverIn(
    job: FailoverJob,
    requestText: string,
    session: JobSession,
    trace: TraceRef,
  ): Promise<'placed' | 'failed' | 'moved_on'> {
    const req = parseOrThrow(jobRequestSchema, JSON.parse(requestText));
    const selection = toSelection(req);
    selection.excludeNodeIds = [...selection.excludeNodeIds, ...job.exclude];
    const { result } = this.choose(selection);
    for (const nodeId of result.ranked.slice(0, this.options.maxReservationAttempts)) {
      // the record names the attempt and its node before the node can get the assignment
      const recorded = await this.redis.recordAttempt(
        this.keys.job(job.jobId),
        this.keys.jobIndexesOf(job.jobId).failed,
        job.attempt - 1,
        job.attempt,
        nodeId,
        Date.now(),
        '',
        JOB_INDEX_CAP,
      );
      if (recorded !== 1) return 'moved_on';
      if (
        await this.reserve(
          nodeId,
          job.jobId,
          job.attempt,
          assignFor(req, job.jobId, job.attempt, session, trace),
        )
      ) {
        return 'placed';
      }
      this.metrics.reservationConflicts.inc();
    }
    const error = {
      code: 'JOB_TIMEOUT',
      message: `attempt ${job.attempt - 1} timed out and no other node can take the job: ${result.message}`,
    };
    await this.redis.recordAttempt(
      this.keys.job(job.jobId),
      this.keys.jobIndexesOf(job.jobId).failed,
      job.attempt - 1,
      job.attempt,
      '',
      Date.now(),
      JSON.stringify(error),
      JOB_INDEX_CAP,
    );
    return 'failed';
  }

  /**
   * session_id / utterance_index of a new job, never colliding by default: no session_id → the
   * job is its own session (its id; the given index, else 0); a session_id without an index →
   * the session's next.
   */
  private async sessionOf(
    req: JobRequest,
    jobId: string,
    sessionId: string | null,
    timeoutMs: number,
  ): Promise<JobSession> {
    const given = req.payload?.['utterance_index'];
    const index = typeof given === 'number' && Number.isFinite(given) ? given : null;
    if (sessionId === null) return { sessionId: jobId, utteranceIndex: index ?? 0, timeoutMs };
    return { sessionId, utteranceIndex: index ?? (await this.sessions.nextIndex(sessionId)), timeoutMs };
  }

  /** The same job_id again: the same answer, never a second reservation. */
  private async existing(jobId: string, placement: string): Promise<PlacementResponse> {
    const deadline = Date.now() + 2000;
    let text = placement;
    while (!text && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20)); // the first request is still placing it
      const now = await this.jobs.placement(jobId);
      if (now.status === null)
        throw new SwitchboardError('NO_AVAILABLE_NODE', `job ${jobId} could not be placed`);
      text = now.placement ?? '';
    }
    if (!text)
      throw new SwitchboardError('SCHEDULER_DEPENDENCY_DOWN', `job ${jobId} is still being placed; retry`);
    return { status: 200, body: JSON.parse(text) as Record<string, unknown> };
  }

  /** The in-memory choice in its own `job.choose` span (no I/O: microseconds), with its figures. */
  private choose(selection: Parameters<typeof select>[1]): { result: SelectionResult; selectionUs: number } {
    return stepSpan('job.choose', (span) => {
      const started = performance.now();
      const result = select(this.index, selection, this.selectionPolicy());
      const selectionUs = Math.round((performance.now() - started) * 1000);
      if (span.isRecording())
        span.setAttributes({
          'sb.pool': result.pool,
          'sb.total_nodes': result.breakdown.total_nodes,
          'sb.candidates': result.breakdown.candidates,
          'sb.eligible': result.breakdown.eligible,
          'sb.breakdown': JSON.stringify(result.breakdown),
          'sb.selection_us': selectionUs,
        });
      return { result, selectionUs };
    });
  }

  /** One reservation attempt in a `job.reserve` span; the script also dispatches job_assign. */
  private reserve(nodeId: string, jobId: string, attempt: number, frame: string): Promise<boolean> {
    return inSpan(
      'job.reserve',
      { 'sb.node_id': nodeId, 'sb.job_id': jobId, 'sb.attempt': attempt },
      (span) => this.reserveIn(span, nodeId, jobId, attempt, frame),
    );
  }

  private async reserveIn(
    span: Span,
    nodeId: string,
    jobId: string,
    attempt: number,
    frame: string,
  ): Promise<boolean> {
    const k = this.keys.forNode(nodeId);
    const now = Date.now();
    const [code, running, reserved, , dirtyWasEmpty] = await this.redis.reserveSlot(
      k.node(nodeId),
      k.live,
      k.reservation(jobId),
      k.reservations,
      k.inbox(nodeId),
      k.dirty,
      k.assignments,
      nodeId,
      jobId,
      attempt,
      now,
      this.options.ackTimeoutMs,
      this.options.nodeTtlMs,
      frame,
      this.options.inboxLength,
    );
    this.live.set(nodeId, { running, reserved, at: now });
    span.setAttributes({
      'sb.outcome': RESERVE_OUTCOMES[code] ?? String(code),
      'sb.running': running,
      'sb.reserved': reserved,
    });
    if (code === 1) span.addEvent('job_assign dispatched', { 'sb.inbox': k.inbox(nodeId) });
    // best effort: the liveness tick requests a flush for any dirty set left without one
    if (dirtyWasEmpty === 1) await this.queues.requestFlush(k.shard).catch(() => undefined);
    return code === 1 || code === 2;
  }

  /** The policy placements use now, with this selector's known load (POST /v1/explain replays it). */
  selectionPolicy(): SelectionPolicy {
    // knownLoadIds: only the nodes this selector reserved on are looked up, not every candidate
    return {
      ...this.options.policy,
      knownLoad: (id) => this.knownLoad(id),
      knownLoadIds: () => this.live.keys(),
    };
  }

  /** Load learnt from Redis after the snapshot entry was published; the snapshot wins once newer. */
  private knownLoad(nodeId: string): { running: number; reserved: number } | undefined {
    const known = this.live.get(nodeId);
    if (!known) return undefined;
    const entry = this.index.get(nodeId)?.entry;
    if (entry && entry.at >= known.at) {
      this.live.delete(nodeId);
      return undefined;
    }
    return known;
  }
}

/** The span's own context when tracing is on; else the caller's `traceparent` passed through. */
function traceRefOf(span: Span, fallback: string | null | undefined): TraceRef {
  const own = traceparentOf(span);
  if (own) return { traceId: span.spanContext().traceId, traceparent: own };
  const given = parseTraceparent(fallback);
  return given ? { traceId: given.traceId, traceparent: fallback! } : { traceId: null, traceparent: null };
}

/** The attempt's job_assign frame (shared/protocol/outbound-frames.ts). */
function assignFor(
  req: JobRequest,
  jobId: string,
  attemptId: number,
  s: JobSession,
  trace: TraceRef,
): string {
  return jobAssignFrame(req, { jobId, attemptId, ...s, trace });
}
