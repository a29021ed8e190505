import { Counter, FoldedHistogram, Gauge, LATENCY_BUCKETS, type Registry } from '../../shared/metrics.ts';

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

export function createGatewayMetrics(registry: Registry) {
  /** Heartbeats counted since the last scrape, by outcome: added to the counter when scraped. */
  const pending = new Map<string, number>();
  return {
    heartbeats: new Counter({
      name: 'sb_heartbeats_total',
      help: 'Heartbeats handled, by outcome (applied, stale, clock_jump, error code)',
      labelNames: ['outcome'] as const,
      registers: [registry],
      collect() {
        for (const [outcome, n] of pending) {
          if (n > 0) this.inc({ outcome }, n);
          pending.set(outcome, 0);
        }
      },
    }),
    /**
     * One heartbeat handled. A plain count per outcome, folded into sb_heartbeats_total on
     * scrape: prom-client's `inc({ outcome })` allocated ~250 B per call (bench/alloc.ts).
     */
    countHeartbeat(outcome: string): void {
      pending.set(outcome, (pending.get(outcome) ?? 0) + 1);
    },
    /** `record(seconds)` on the hot paths: counted in arrays, folded in on scrape (FoldedHistogram). */
    heartbeatSeconds: new FoldedHistogram({
      name: 'sb_heartbeat_duration_seconds',
      help: 'Server-side heartbeat handling time: frame or request received to Redis write done',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    registrations: new Counter({
      name: 'sb_registrations_total',
      help: 'node_register handled, by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    registrationRefusals: new Counter({
      name: 'sb_registration_refusals_total',
      help: 'node_register refused, by error code and the first field named (the lingua client shows nothing)',
      labelNames: ['code', 'field'] as const,
      registers: [registry],
    }),
    wsConnections: new Gauge({
      name: 'sb_ws_connections',
      help: 'Open node WebSocket connections',
      registers: [registry],
    }),
    jobResults: new Counter({
      name: 'sb_job_results_total',
      help: "Job results applied to the job's current attempt, by status (finished, failed)",
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'sb_rejected_total',
      help: 'Messages shed or refused before any work, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  };
}
