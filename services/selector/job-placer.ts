import { randomUUID } from 'node:crypto';
import type { Span } from '@opentelemetry/api';
import { commandNotRun, SwitchboardError } from '../../shared/errors.ts';
import {
  JOB_DEFAULTS,
  jobRequestSchema,
  type JobPlacement,
  type JobRequest,
} from '../../shared/protocol/client-messages.ts';
import { jobAssignFrame, type AssignTrace } from '../../shared/protocol/outbound-frames.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import type { FailoverJob } from '../../shared/queues.ts';
import type { Claim, ExistingJob, JobSession, JobShardStore } from '../../shared/store/job-shard.ts';
import type { PlacingRecovery } from '../../shared/store/placing-recovery.ts';
import type { SessionStore } from '../../shared/store/sessions.ts';
import type { ReserveResult, SlotStore } from '../../shared/store/slots.ts';
import { inSpan, stepSpan } from '../../shared/telemetry.ts';
import { jobTenant, type Caller } from './api-keys.ts';
import { placeFailover, traceRefOf, type FailoverOutcome } from './failover-placement.ts';
import { toSelection } from './job-selection.ts';
import { select, type Breakdown, type SelectionPolicy, type SelectionResult } from './selection.ts';
import type { SelectorMetrics } from './selector-metrics.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

/** Where the job_assign frame points a node's trace: `trace_id` and the placement span's `traceparent`. */
type TraceRef = AssignTrace;

/** A reservation reply older than this no longer stands in for the snapshot's load. */
const KNOWN_LOAD_MAX_AGE_MS = 5000;

export interface PlacerOptions {
  policy: Omit<SelectionPolicy, 'knownLoad'>;
  /** Reservation attempts on further candidates after a conflict. */
  maxReservationAttempts: number;
  /** SB_JOB_TIMEOUT_MS: a job's deadline after acceptance when it gives no timeout_ms */
  jobTimeoutMs: number;
  /** SB_MAX_JOB_TIMEOUT_MS: the largest timeout_ms a job may ask for */
  maxJobTimeoutMs: number;
  /** SB_FAULT_PLACE_PAUSE_MS (crash tests): a pause after the claim and after the reservation */
  faultPauseMs?: number;
}

/** The stores placement writes through (shared/store/). */
export interface PlacerStores {
  jobs: JobShardStore;
  slots: SlotStore;
  sessions: SessionStore;
  recovery: PlacingRecovery;
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

/** One placement being made: what its answers and frames are built from. */
interface Placing {
  jobId: string;
  req: JobRequest;
  result: SelectionResult;
  selectionUs: number;
  span: Span;
  trace: TraceRef;
  session: JobSession;
  sessionId: string | null;
}

/**
 * POST /v1/jobs: choose from the in-memory snapshot (pure, no await); then ONE script on the
 * job's shard claims the id and records attempt 1 on the chosen node with the answer (or
 * returns the job that holds the id); then ONE script on the node's shard reserves the slot and
 * hands the node the assignment. A conflict re-points the job (compare-and-set) at the next
 * candidate (bounded). A placement cut short is settled by PlacingRecovery.
 */
export class JobPlacer {
  /** What reservation replies told us about nodes, newer than the snapshot. */
  private readonly live = new Map<string, LiveLoad>();

  constructor(
    private readonly stores: PlacerStores,
    private readonly index: SnapshotIndex,
    /** The snapshot version and age of a node shard, O(1). */
    private readonly snapshotOf: (shard: number) => { version: number; ageMs: number },
    private readonly shardOf: (nodeId: string) => number,
    private readonly metrics: SelectorMetrics,
    private readonly options: PlacerOptions,
  ) {}

  /**
   * `clientTraceparent`: the request's W3C header. The placement runs in a `job.place` span
   * (a child of the request's span when tracing is on), whose trace id and traceparent go into
   * job_assign and the job record, so the gateway's ack/result spans join the same trace. One
   * child span per step: `job.choose` (in memory), `job.claim` (the id claimed and attempt 1
   * recorded, one script), `job.reserve`.
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

  /** The policy placements use now, with this selector's known load. */
  selectionPolicy(): SelectionPolicy {
    const lapsed = Date.now() - KNOWN_LOAD_MAX_AGE_MS;
    // knownLoadMarked: only the nodes this selector reserved on (marked in the index as it
    // learns their load) are looked up, found by bit set: not every candidate, no id lookups
    return {
      ...this.options.policy,
      knownLoad: (id) => this.knownLoad(id, lapsed),
      knownLoadMarked: true,
    };
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
    const sessionNode = sessionId === null ? null : await this.stores.sessions.node(sessionId);
    const selection = toSelection(req, sessionNode);
    const { result, selectionUs } = stepSpan('job.choose', (choose) => {
      const started = performance.now();
      const chosen = select(this.index, selection, this.selectionPolicy());
      const us = Math.round((performance.now() - started) * 1000);
      if (choose.isRecording())
        choose.setAttributes({
          'sb.pool': chosen.pool,
          'sb.total_nodes': chosen.breakdown.total_nodes,
          'sb.candidates': chosen.breakdown.candidates,
          'sb.eligible': chosen.breakdown.eligible,
          'sb.breakdown': JSON.stringify(chosen.breakdown),
          'sb.selection_us': us,
        });
      return { result: chosen, selectionUs: us };
    });
    this.metrics.selectionSeconds.observe(selectionUs / 1e6);
    if (span.isRecording()) span.setAttributes({ 'sb.pool': result.pool, 'sb.dry_run': dryRun });
    const jobId = req.job_id ?? `job-${randomUUID()}`;
    const given = req.payload?.['utterance_index'];
    const index = typeof given === 'number' && Number.isFinite(given) ? given : null;
    const p: Placing = {
      jobId,
      req,
      result,
      selectionUs,
      span,
      trace,
      sessionId,
      // no session_id: the job is its own session (its id; the given index, else 0)
      session: { sessionId: sessionId ?? jobId, utteranceIndex: index ?? 0, timeoutMs },
    };
    if (result.ranked.length === 0) {
      // idempotency first: a repeated job_id gets its job back whatever the fleet's state
      if (!dryRun && req.job_id !== undefined) {
        const found = await this.stores.jobs.placingState(jobId);
        const repeat = found && (await this.existing(p, found, tenant, caller));
        if (repeat) return repeat;
      }
      throw new NoAvailableNodeError(result.message, result.breakdown);
    }
    if (dryRun)
      return { status: 200, body: { ...this.answer(p, null, result.ranked[0]!, null), dry_run: true } };

    span.setAttribute('sb.job_id', jobId);
    const allocate = sessionId !== null && index === null;
    for (let round = 0; round < 2; round++) {
      const nodeId = result.ranked[0]!;
      const answer = this.answer(p, jobId, nodeId, 1);
      // one script on the job's shard: the id claimed and attempt 1 recorded, or the job that holds it
      const claim = await inSpan(
        'job.claim',
        { 'sb.job_id': jobId, 'sb.node_id': nodeId, 'sb.attempt': 1 },
        async (claimSpan) => {
          const c = await this.stores.jobs.claim({
            jobId,
            request: req,
            tenant,
            nodeId,
            answer,
            traceparent: trace.traceparent,
            session: { ...p.session, utteranceIndex: allocate ? null : p.session.utteranceIndex },
          });
          claimSpan.setAttribute('sb.outcome', c.claimed ? 'claimed' : 'repeated');
          return c;
        },
      );
      if (claim.claimed) return this.dispatch(p, claim, allocate, answer);
      const repeat = await this.existing(p, claim, tenant, caller);
      if (repeat) return repeat;
      // the job that held the id was dropped (its placement failed): claim it anew
    }
    throw new SwitchboardError('SCHEDULER_DEPENDENCY_DOWN', `job ${jobId} is being placed; retry`);
  }

  /** Claimed: reserves on the ranked nodes in turn, re-pointing the job after a conflict. */
  private async dispatch(
    p: Placing,
    claim: Claim,
    allocate: boolean,
    first: JobPlacement,
  ): Promise<PlacementResponse> {
    const { jobs, sessions } = this.stores;
    const ranked = p.result.ranked.slice(0, this.options.maxReservationAttempts);
    let conflicts = 0;
    for (const [i, nodeId] of ranked.entries()) {
      // the answer is the one kept for repeats: at claim, or at the re-point
      let placement = first;
      if (i > 0) {
        placement = { ...this.answer(p, p.jobId, nodeId, 1), reservation_conflicts: conflicts };
        if (!(await jobs.repoint(p.jobId, claim.token, ranked[i - 1]!, nodeId, placement)))
          throw this.settledAway(p.jobId);
      }
      // the session's node (and, without a given index, its next utterance index) before the frame
      let bound: Promise<unknown> = Promise.resolve();
      if (allocate && i === 0) {
        p.session.utteranceIndex = (await sessions.bind(p.sessionId!, nodeId, true))!;
        bound = jobs.setUtteranceIndex(p.jobId, p.session.utteranceIndex);
      } else if (p.sessionId !== null) bound = sessions.bind(p.sessionId, nodeId);
      await this.faultPause();
      let r: ReserveResult;
      try {
        const frame = jobAssignFrame(p.req, { jobId: p.jobId, attemptId: 1, ...p.session, trace: p.trace });
        [r] = await Promise.all([this.reserve(nodeId, p.jobId, 1, frame, claim.token), bound]);
      } catch (err) {
        // certainly not run: give the id back now; otherwise recovery settles it past its deadline
        if (commandNotRun(err)) void jobs.drop(p.jobId, nodeId, claim.token).catch(() => undefined);
        throw err;
      }
      if (r.held) {
        await this.faultPause();
        jobs.confirm(p.jobId);
        p.span.setAttribute('sb.reservation_conflicts', conflicts);
        return { status: 201, body: placement };
      }
      if (r.outcome === 'fenced') throw this.settledAway(p.jobId);
      conflicts++;
      this.metrics.reservationConflicts.inc();
    }
    p.span.setAttribute('sb.reservation_conflicts', conflicts);
    await jobs.drop(p.jobId, ranked[ranked.length - 1]!, claim.token);
    throw new NoAvailableNodeError(
      `0/${p.result.breakdown.total_nodes} nodes available: ${conflicts} reservation_conflict (the candidates filled up since the snapshot)`,
      p.result.breakdown,
      conflicts,
    );
  }

  private async faultPause(): Promise<void> {
    if (this.options.faultPauseMs) await new Promise((r) => setTimeout(r, this.options.faultPauseMs));
  }

  /** Recovery settled this placement as not placed (it took longer than its placing window). */
  private settledAway(jobId: string): SwitchboardError {
    return new SwitchboardError(
      'SCHEDULER_DEPENDENCY_DOWN',
      `job ${jobId} could not be placed in time; retry`,
    );
  }

  /**
   * The same job_id again: the same answer, never a second reservation. A placement still
   * unconfirmed is waited for (bounded), or settled by recovery once past its deadline. Null:
   * there is no job with that id (any more): the caller claims it.
   */
  private async existing(
    p: Placing,
    found: ExistingJob,
    tenant: string,
    caller: Caller | null,
  ): Promise<PlacementResponse | null> {
    p.span.setAttribute('sb.repeated', true);
    if (found.tenant !== tenant && found.tenant !== '' && caller?.admin !== true)
      throw new SwitchboardError('JOB_ID_CONFLICT', `job_id: ${p.jobId} is taken by another tenant's job`);
    let answer = found.placingUntil === null ? found.answer : '';
    const until = Date.now() + 2000;
    while (!answer && Date.now() < until) {
      const settled = await this.stores.recovery.resolve(p.jobId);
      if (settled.outcome === 'gone' || settled.outcome === 'dropped') return null;
      if (settled.outcome === 'placed') answer = settled.answer;
      else await new Promise((r) => setTimeout(r, 20)); // the first request is still placing it
    }
    if (!answer)
      throw new SwitchboardError('SCHEDULER_DEPENDENCY_DOWN', `job ${p.jobId} is still being placed; retry`);
    return { status: 200, body: JSON.parse(answer) as Record<string, unknown> };
  }

  private answer(p: Placing, jobId: string | null, nodeId: string, attemptId: number | null): JobPlacement {
    const snap = this.snapshotOf(this.shardOf(nodeId));
    p.span.setAttributes({
      'sb.node_id': nodeId,
      'sb.snapshot.version': snap.version,
      'sb.snapshot.age_ms': snap.ageMs,
    });
    return {
      job_id: jobId,
      attempt_id: attemptId,
      node_id: nodeId,
      pool: p.result.pool,
      snapshot: { version: snap.version, age_ms: snap.ageMs },
      breakdown: p.result.breakdown,
      selection_us: p.selectionUs,
    };
  }

  /** A failover attempt (failover-placement.ts), with this selector's selection and reservations. */
  failover(job: FailoverJob): Promise<FailoverOutcome> {
    return placeFailover(
      {
        jobs: this.stores.jobs,
        index: this.index,
        policy: () => this.selectionPolicy(),
        reserve: (nodeId, jobId, attemptId, frame) => this.reserve(nodeId, jobId, attemptId, frame, ''),
        metrics: this.metrics,
        options: this.options,
      },
      job,
    );
  }

  /** One reservation attempt in a `job.reserve` span; the script also dispatches job_assign. */
  reserve(
    nodeId: string,
    jobId: string,
    attemptId: number,
    frame: string,
    claimToken: string,
  ): Promise<ReserveResult> {
    return inSpan(
      'job.reserve',
      { 'sb.node_id': nodeId, 'sb.job_id': jobId, 'sb.attempt': attemptId },
      async (span) => {
        const r = await this.stores.slots.reserve({ nodeId, jobId, attemptId, frame, claimToken });
        // this selector's own reservations, until the snapshot (or time) catches up
        this.live.set(nodeId, { running: r.running, reserved: r.reserved, at: r.at });
        this.index.markKnown(nodeId);
        span.setAttributes({ 'sb.outcome': r.outcome, 'sb.running': r.running, 'sb.reserved': r.reserved });
        if (r.outcome === 'reserved') span.addEvent('job_assign dispatched');
        return r;
      },
    );
  }

  /**
   * Load learnt from this selector's reservation replies after the snapshot entry was
   * published; the snapshot wins once newer, and a reply older than KNOWN_LOAD_MAX_AGE_MS
   * lapses (reservations no longer republish a node: the entry catches up only when the node's
   * running count or its free/full state changes).
   */
  private knownLoad(nodeId: string, lapsed: number): { running: number; reserved: number } | undefined {
    const known = this.live.get(nodeId);
    if (!known) return undefined;
    const entry = this.index.get(nodeId)?.entry;
    if ((entry && entry.at >= known.at) || known.at < lapsed) {
      this.live.delete(nodeId);
      this.index.unmarkKnown(nodeId);
      return undefined;
    }
    return known;
  }
}
