import { Counter, Gauge, Histogram, LATENCY_BUCKETS, type Registry } from '../../shared/metrics.ts';

export type SelectorMetrics = ReturnType<typeof createSelectorMetrics>;

export function createSelectorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    selectionSeconds: new Histogram({
      name: 'sb_selection_duration_seconds',
      help: 'In-memory choice: filters, breakdown and ranking (no I/O)',
      buckets: [0.00001, 0.000025, 0.00005, ...LATENCY_BUCKETS.slice(1)],
      registers,
    }),
    jobs: new Counter({
      name: 'sb_jobs_total',
      help: 'POST /v1/jobs answers, by outcome (placed, repeated, dry_run, no_node, invalid, error)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    requestSeconds: new Histogram({
      name: 'sb_job_request_duration_seconds',
      help: 'POST /v1/jobs end to end inside the selector (selection + reservation + record)',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    reservationConflicts: new Counter({
      name: 'sb_reservation_conflicts_total',
      help: 'Reservations refused by the live node record (the snapshot was behind); the next candidate is tried',
      registers,
    }),
    jobWaiters: new Gauge({
      name: 'sb_job_waiters',
      help: 'Requests waiting for a job to change (GET /v1/jobs/:id?wait_ms=, event streams)',
      registers,
    }),
    jobWakeups: new Counter({
      name: 'sb_job_wakeups_total',
      help: 'Waiting requests woken, by cause: event (the job changed), resync (its shard was subscribed again), fallback (the bounded re-read), timeout, closed',
      labelNames: ['cause'] as const,
      registers,
    }),
    jobWaitersShed: new Counter({
      name: 'sb_job_waiters_shed_total',
      help: 'Waiting requests refused with 429 RATE_LIMITED: SB_MAX_JOB_WAITERS were open',
      registers,
    }),
    replicaNodes: new Gauge({ name: 'sb_replica_nodes', help: 'Nodes in this selector replica', registers }),
    replicaStaleness: new Histogram({
      name: 'sb_replica_staleness_seconds',
      help: 'Heartbeat received (server time) to visible in this selector replica',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
  };
}
