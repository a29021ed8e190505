/**
 * Joins the job client's records (POST sent, answer, result seen, the job record's own
 * timestamps) with the fleet's job_assign receipts, by job id, into the scenario's latencies
 * and counts. All instants are epoch ms: the two benchmark children stamp with
 * performance.timeOrigin + performance.now() (sub-ms), the services with Date.now() (whole ms,
 * truncated: their stages read on average ~0.5 ms early).
 */
import { summarize, type SampleSummary } from '../lib/stats.ts';
import type { JobRecord } from './client.child.ts';
import type { AssignRecord } from './fleet.child.ts';

export interface JobCounts {
  measured: number;
  /** POST answers by HTTP status; `transport` = no answer (reset, timeout). */
  statuses: Record<string, number>;
  placed: number;
  finished: number;
  failed: number;
  /** Failed jobs by error code. */
  failedBy: Record<string, number>;
  /** Placed, but neither finished nor failed when the client gave up. */
  unresolved: number;
  /** Sum of `reservation_conflicts` over the POST answers (201 and 503). */
  reservationConflicts: number;
  /** 201s that needed more than one candidate. */
  placedAfterConflict: number;
  /** Finished or failed jobs whose record holds more than one attempt (a failover happened). */
  failedOver: number;
  /** Placed jobs the fleet never reported a job_assign for. */
  assignMissing: number;
  /** Jobs whose job_assign reached the fleet more than once (redelivery or a later attempt). */
  assignRepeated: number;
  /** Assignments a node declined (at max_concurrent_jobs, draining). */
  declined: number;
  /**
   * Finished first-attempt jobs whose record lacks a stage: the gateway dropped that node
   * frame's record update as stale (see `assignBeforeDispatch`).
   */
  recordMissing: { accepted: number; started: number };
  /**
   * Placed jobs whose job_assign reached the node before the selector had recorded the
   * dispatch (fleet receipt < dispatched_at): the selector writes the record after the
   * reservation has already pushed the assignment to the gateway.
   */
  assignBeforeDispatch: number;
  /** First non-201 answer or transport error, as an example. */
  firstError: string | null;
}

export interface JobLatencies {
  /** POST sent → 201 read (placed jobs). */
  submitToPlaced: SampleSummary | null;
  /** (a) POST sent → job_assign received by the node (first receipt). */
  submitToAssign: SampleSummary | null;
  /** (b) POST sent → GET returned `finished` (finished jobs). */
  submitToVisible: SampleSummary | null;
  /** Stages from the job record, each from POST sent (finished jobs). */
  stages: {
    created: SampleSummary | null;
    dispatched: SampleSummary | null;
    assignReceived: SampleSummary | null;
    accepted: SampleSummary | null;
    started: SampleSummary | null;
    finished: SampleSummary | null;
    visible: SampleSummary | null;
  };
  /** Result stored (finished_at) → seen by the long-poll: the poll's share of (b). */
  storedToSeen: SampleSummary | null;
  /**
   * (c) The node handed its job_result to its socket → the client had read the GET that returned
   * it (both sub-ms, same clock): gateway, the job record, the selector's wake-up and the answer.
   * First-attempt finished jobs.
   */
  resultToVisible: SampleSummary | null;
  /** How late the open-loop sender handed POSTs to node:http versus their schedule. */
  sendLateness: SampleSummary | null;
  /** The slowest (b) per second of the window, by send time (ms): stalls vs steady queueing. */
  visibleMaxBySecond: number[];
}

const round = (x: number) => Math.round(x * 100) / 100;

function summary(values: number[]): SampleSummary | null {
  if (values.length === 0) return null;
  const s = summarize(values);
  return {
    count: s.count,
    mean: round(s.mean),
    p50: round(s.p50),
    p90: round(s.p90),
    p99: round(s.p99),
    max: round(s.max),
  };
}

export function analyzeJobs(
  records: JobRecord[],
  assigns: Map<string, AssignRecord>,
): { counts: JobCounts; latency: JobLatencies } {
  const counts: JobCounts = {
    measured: records.length,
    statuses: {},
    placed: 0,
    finished: 0,
    failed: 0,
    failedBy: {},
    unresolved: 0,
    reservationConflicts: 0,
    placedAfterConflict: 0,
    failedOver: 0,
    assignMissing: 0,
    assignRepeated: 0,
    declined: 0,
    recordMissing: { accepted: 0, started: 0 },
    assignBeforeDispatch: 0,
    firstError: null,
  };
  const v = {
    placed: [] as number[],
    assign: [] as number[],
    visible: [] as number[],
    created: [] as number[],
    dispatched: [] as number[],
    assignF: [] as number[],
    accepted: [] as number[],
    started: [] as number[],
    finished: [] as number[],
    visibleF: [] as number[],
    storedToSeen: [] as number[],
    resultToVisible: [] as number[],
    late: [] as number[],
  };
  const t0 = records.reduce((min, r) => Math.min(min, r.sentAt), Infinity);
  const maxBySecond: number[] = [];
  for (const r of records) {
    const status = r.postStatus === 0 ? 'transport' : String(r.postStatus);
    counts.statuses[status] = (counts.statuses[status] ?? 0) + 1;
    counts.reservationConflicts += r.conflicts;
    v.late.push(r.lateMs);
    if (r.postStatus !== 201) {
      counts.firstError ??= `${status}: ${r.postError ?? ''}`;
      continue;
    }
    counts.placed++;
    if (r.conflicts > 0) counts.placedAfterConflict++;
    if (r.postMs !== null) v.placed.push(r.postMs);
    const a = assigns.get(r.id);
    if (!a) counts.assignMissing++;
    else {
      v.assign.push(a.at - r.sentAt);
      if (a.receipts > 1) counts.assignRepeated++;
      if (a.outcome === 'declined') counts.declined++;
      // dispatched_at is a whole ms (truncated): the receipt is earlier only if before it.
      if (r.dispatched !== null && a.at < r.dispatched) counts.assignBeforeDispatch++;
    }
    if (r.attempts > 1) counts.failedOver++;
    if (r.final === 'unresolved' || r.final === null) {
      counts.unresolved++;
      continue;
    }
    if (r.final === 'failed') {
      counts.failed++;
      const code = r.errorCode ?? 'unknown';
      counts.failedBy[code] = (counts.failedBy[code] ?? 0) + 1;
      continue;
    }
    counts.finished++;
    const visible = r.seenAt! - r.sentAt;
    v.visible.push(visible);
    const second = Math.floor((r.sentAt - t0) / 1000);
    maxBySecond[second] = Math.max(maxBySecond[second] ?? 0, visible);
    // The stage waterfall: only jobs finished by their first attempt, so that every stage is
    // one attempt's.
    if (r.attempts !== 1) continue;
    const stage = (at: number | null, into: number[]) => {
      if (at !== null) into.push(at - r.sentAt);
    };
    stage(r.created, v.created);
    stage(r.dispatched, v.dispatched);
    if (a) v.assignF.push(a.at - r.sentAt);
    stage(r.accepted, v.accepted);
    stage(r.started, v.started);
    if (r.accepted === null) counts.recordMissing.accepted++;
    if (r.started === null) counts.recordMissing.started++;
    stage(r.finished, v.finished);
    v.visibleF.push(visible);
    if (r.finished !== null) v.storedToSeen.push(r.seenAt! - r.finished);
    if (a?.resultAt != null) v.resultToVisible.push(r.seenAt! - a.resultAt);
  }
  return {
    counts,
    latency: {
      submitToPlaced: summary(v.placed),
      submitToAssign: summary(v.assign),
      submitToVisible: summary(v.visible),
      stages: {
        created: summary(v.created),
        dispatched: summary(v.dispatched),
        assignReceived: summary(v.assignF),
        accepted: summary(v.accepted),
        started: summary(v.started),
        finished: summary(v.finished),
        visible: summary(v.visibleF),
      },
      storedToSeen: summary(v.storedToSeen),
      resultToVisible: summary(v.resultToVisible),
      sendLateness: summary(v.late),
      visibleMaxBySecond: Array.from(maxBySecond, (x) => round(x ?? 0)),
    },
  };
}
