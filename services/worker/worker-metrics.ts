import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, type Registry } from '../../shared/metrics.ts';

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

/** Queue depths, read from BullMQ at scrape time. */
export function registerQueueDepths(registry: Registry, queues: Record<string, Queue>): void {
  new Gauge({
    name: 'sb_queue_jobs',
    help: 'Jobs in the derived-work queues, by queue and state',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      for (const [name, queue] of Object.entries(queues)) {
        try {
          const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'failed');
          for (const [state, n] of Object.entries(counts)) this.set({ queue: name, state }, n);
        } catch {
          // Redis unreachable: keep the last values; /readyz reports the outage
        }
      }
    },
  });
}

export function createWorkerMetrics(registry: Registry) {
  const registers = [registry];
  return {
    flushes: new Counter({
      name: 'sb_snapshot_flushes_total',
      help: 'Snapshot flushes, by outcome (published, empty, recovered)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    deltaNodes: new Histogram({
      name: 'sb_snapshot_delta_nodes',
      help: 'Nodes (upserts + removals) per published delta',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
      registers,
    }),
    publishedNodes: new Counter({
      name: 'sb_snapshot_published_nodes_total',
      help: 'Node entries published (upserts + removals) over all deltas',
      registers,
    }),
    redirtied: new Counter({
      name: 'sb_snapshot_redirtied_total',
      help: 'Nodes a flush published while a heartbeat changed them since its read: put back in the dirty set',
      registers,
    }),
    flushSeconds: new Histogram({
      name: 'sb_snapshot_flush_duration_seconds',
      help: 'One flush: take the dirty batch, read the nodes, publish',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    lag: new Histogram({
      name: 'sb_snapshot_lag_seconds',
      help:
        'Pipeline lag to publication: a heartbeat (or registration) that changed the node received ' +
        '(server time the node was first marked dirty since its previous publication) to its entry published',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    version: new Gauge({
      name: 'sb_snapshot_version',
      help: 'Latest published snapshot version, by shard',
      labelNames: ['shard'] as const,
      registers,
    }),
    reaperTicks: new Counter({
      name: 'sb_reaper_ticks_total',
      help: 'Liveness ticks this process ran',
      registers,
    }),
    timeouts: new Counter({
      name: 'sb_job_timeouts_total',
      help: 'Job attempts timed out and released, by reason (ack_timeout, job_timeout, node_offline, slot_lost)',
      labelNames: ['reason'] as const,
      registers,
    }),
    recounted: new Counter({
      name: 'sb_slots_recounted_total',
      help: 'Nodes whose slot counters the liveness tick checked (a slice of each shard per tick)',
      registers,
    }),
    reaperTickSeconds: new Histogram({
      name: 'sb_reaper_tick_duration_seconds',
      help: 'One liveness tick over every shard: offline, retention, timeouts, recount slice, sweep',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    swept: new Counter({
      name: 'sb_jobs_swept_total',
      help: 'Due jobs the job sweep looked at, by outcome (closed, held, waiting, slot_lost, failover_reasked)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    reconciled: new Counter({
      name: 'sb_slots_reconciled_total',
      help: 'Nodes whose reserved/committed counters were corrected by reconciliation (should stay 0)',
      registers,
    }),
    schedulerRestored: new Counter({
      name: 'sb_liveness_scheduler_restored_total',
      help: 'Times this worker found the liveness job scheduler missing from Redis (Redis lost its data) and created it again',
      registers,
    }),
    livenessStalls: new Counter({
      name: 'sb_liveness_stalls_total',
      help: 'Times this worker found the liveness tick overdue (its next job lost, or the BullMQ worker stuck) and scheduled it again with a fresh liveness worker',
      registers,
    }),
    reaped: new Counter({
      name: 'sb_nodes_reaped_total',
      help: 'Nodes the reaper marked offline or removed',
      labelNames: ['kind'] as const,
      registers,
    }),
  };
}
