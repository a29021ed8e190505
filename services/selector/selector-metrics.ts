import { Counter, Gauge, Histogram, LATENCY_BUCKETS, type Registry } from '../../shared/metrics.ts';
import { POOL_SERIES_LIMIT, type FleetFigures } from './fleet-gauges.ts';

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
    replicaLag: new Histogram({
      name: 'sb_replica_lag_seconds',
      help:
        'Pipeline lag: a heartbeat (or registration) that changed the node received (server time the node ' +
        'was first marked dirty since its previous publication) to visible to selection in this replica',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    // The fleet as this replica sees it (fleet-gauges.ts), set at scrape time.
    nodes: new Gauge({
      name: 'sb_nodes',
      help: 'Nodes in this selector replica, by status (registering, ready, degraded, offline)',
      labelNames: ['status'] as const,
      registers,
    }),
    nodesUnavailable: new Gauge({
      name: 'sb_nodes_unavailable',
      help: 'Nodes not offline that selection skips anyway, by reason (draining, quarantined)',
      labelNames: ['reason'] as const,
      registers,
    }),
    slots: new Gauge({
      name: 'sb_slots',
      help: 'Job slots: used (running + reserved, nodes not offline), free (on nodes selection may choose)',
      labelNames: ['state'] as const,
      registers,
    }),
    pools: new Gauge({
      name: 'sb_pools',
      help: 'Directed pipelines offered by some node, by state (with_ready, without_ready)',
      labelNames: ['state'] as const,
      registers,
    }),
    poolReadyNodes: new Gauge({
      name: 'sb_pool_ready_nodes',
      help: `Nodes selection may choose, per directed pipeline (at most ${POOL_SERIES_LIMIT} pools: those with fewest first)`,
      labelNames: ['pool'] as const,
      registers,
    }),
  };
}

/** Sets the fleet gauges from one computation; pools no longer reported lose their series. */
export function setFleetGauges(metrics: SelectorMetrics, fleet: FleetFigures): void {
  for (const [status, n] of Object.entries(fleet.nodes)) metrics.nodes.set({ status }, n);
  for (const [reason, n] of Object.entries(fleet.unavailable)) metrics.nodesUnavailable.set({ reason }, n);
  metrics.slots.set({ state: 'used' }, fleet.slots.used);
  metrics.slots.set({ state: 'free' }, fleet.slots.free);
  metrics.pools.set({ state: 'with_ready' }, fleet.pools.withReady);
  metrics.pools.set({ state: 'without_ready' }, fleet.pools.withoutReady);
  metrics.poolReadyNodes.reset();
  for (const [pool, n] of fleet.poolReady) metrics.poolReadyNodes.set({ pool }, n);
}
