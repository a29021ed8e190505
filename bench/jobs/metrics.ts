/**
 * The services' own figures over a window: two scrapes of each service's `/metrics` (taken
 * together at both ends), reduced to what the jobs scenario reports.
 */
import { byLabel, diffRecords, histogramOf, scrape, sumOf, type Scrape } from '../lib/prometheus.ts';
import { histogramDelta, histogramQuantile } from '../lib/stats.ts';
import type { Service, ServiceName } from './services.ts';

export type ServiceMark = Record<ServiceName, Scrape>;

export async function markServices(services: Service[]): Promise<ServiceMark> {
  const scrapes = await Promise.all(services.map((s) => scrape(`http://127.0.0.1:${s.port}/metrics`)));
  return Object.fromEntries(services.map((s, i) => [s.name, scrapes[i]!])) as ServiceMark;
}

/** prom-client samples the event loop with a 10 ms timer (shared/metrics.ts); its figures include it. */
const LOOP_RESOLUTION_MS = 10;

export interface Runtime {
  /**
   * prom-client's event-loop delay since the previous scrape (it resets on each), beyond its
   * 10 ms sampling interval: how late a timer ran.
   */
  loopP99Ms: number;
  loopMaxMs: number;
  /** GC pause time in the window (s). */
  gcS: number;
}

export interface ServiceWindow {
  seconds: number;
  selector: {
    /** `sb_jobs_total` deltas by outcome (placed, no_node, …). */
    jobs: Record<string, number>;
    reservationConflicts: number;
    /** POST /v1/jobs inside the selector (histogram, interpolated). */
    requestP50Ms: number | null;
    requestP99Ms: number | null;
    selectionP99Ms: number | null;
  };
  gateway: {
    heartbeatsApplied: number;
    /** `sb_rejected_total` deltas by reason (shed / refused frames). */
    rejected: Record<string, number>;
  };
  worker: {
    /** `sb_job_timeouts_total` deltas by reason. */
    timeouts: Record<string, number>;
    deltasPublished: number;
    nodesPublished: number;
    reconciled: number;
  };
  runtime: Record<ServiceName, Runtime>;
}

const ms = (q: { value: number; overflow: boolean } | null): number | null =>
  q === null ? null : Math.round(q.value * 1e6) / 1e3;

function quantileMs(a: Scrape, b: Scrape, name: string, q: number): number | null {
  return ms(histogramQuantile(histogramDelta(histogramOf(a, name), histogramOf(b, name)), q));
}

function runtime(a: Scrape, b: Scrape): Runtime {
  return {
    loopP99Ms: Math.max(0, sumOf(b, 'nodejs_eventloop_lag_p99_seconds') * 1000 - LOOP_RESOLUTION_MS),
    loopMaxMs: Math.max(0, sumOf(b, 'nodejs_eventloop_lag_max_seconds') * 1000 - LOOP_RESOLUTION_MS),
    gcS: sumOf(b, 'nodejs_gc_duration_seconds_sum') - sumOf(a, 'nodejs_gc_duration_seconds_sum'),
  };
}

export function serviceWindow(a: ServiceMark, b: ServiceMark): ServiceWindow {
  const delta = (s: ServiceName, name: string) => sumOf(b[s], name) - sumOf(a[s], name);
  const labelled = (s: ServiceName, name: string, label: string) =>
    diffRecords(byLabel(a[s], name, label), byLabel(b[s], name, label));
  return {
    seconds: (b.selector.at - a.selector.at) / 1000,
    selector: {
      jobs: labelled('selector', 'sb_jobs_total', 'outcome'),
      reservationConflicts: delta('selector', 'sb_reservation_conflicts_total'),
      requestP50Ms: quantileMs(a.selector, b.selector, 'sb_job_request_duration_seconds', 0.5),
      requestP99Ms: quantileMs(a.selector, b.selector, 'sb_job_request_duration_seconds', 0.99),
      selectionP99Ms: quantileMs(a.selector, b.selector, 'sb_selection_duration_seconds', 0.99),
    },
    gateway: {
      heartbeatsApplied:
        sumOf(b.gateway, 'sb_heartbeats_total', { outcome: 'applied' }) -
        sumOf(a.gateway, 'sb_heartbeats_total', { outcome: 'applied' }),
      rejected: labelled('gateway', 'sb_rejected_total', 'reason'),
    },
    worker: {
      timeouts: labelled('worker', 'sb_job_timeouts_total', 'reason'),
      deltasPublished:
        sumOf(b.worker, 'sb_snapshot_flushes_total', { outcome: 'published' }) -
        sumOf(a.worker, 'sb_snapshot_flushes_total', { outcome: 'published' }),
      nodesPublished: delta('worker', 'sb_snapshot_published_nodes_total'),
      reconciled: delta('worker', 'sb_slots_reconciled_total'),
    },
    runtime: {
      gateway: runtime(a.gateway, b.gateway),
      worker: runtime(a.worker, b.worker),
      selector: runtime(a.selector, b.selector),
    },
  };
}
