import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BUILD_INFO } from './build-info.ts';

/**
 * How a multi-process gateway's primary aggregates a default metric over its children
 * (prom-client's AggregatorRegistry, shared/process-cluster.ts) where prom-client's own choice
 * (`sum` unless it says otherwise) would be wrong: the fd limit is one process's, not their sum;
 * a lag percentile averaged over processes hides the one that is saturated, so the worst counts;
 * the start time is the oldest process's. Switchboard's own gauges name theirs where they are
 * created (`sb_build_info`: `first`). test/unit/metrics-aggregation.test.ts holds every gauge to
 * this: one that sums must be an amount each process holds.
 */
const DEFAULT_METRIC_AGGREGATORS: Record<string, 'min' | 'max'> = {
  process_max_fds: 'min',
  process_start_time_seconds: 'min',
  nodejs_eventloop_lag_p50_seconds: 'max',
  nodejs_eventloop_lag_p90_seconds: 'max',
  nodejs_eventloop_lag_p99_seconds: 'max',
  nodejs_eventloop_lag_stddev_seconds: 'max',
};

/**
 * One Prometheus registry per process, with Node's default metrics (event-loop lag, heap, CPU)
 * and `sb_build_info{version,node_version,service} 1`.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  for (const [name, aggregator] of Object.entries(DEFAULT_METRIC_AGGREGATORS)) {
    const metric = registry.getSingleMetric(name) as { aggregator: string } | undefined;
    if (metric) metric.aggregator = aggregator;
  }
  new Gauge({
    name: 'sb_build_info',
    help: 'Always 1; the labels say which Switchboard version runs on which Node.js',
    labelNames: ['version', 'node_version'],
    registers: [registry],
    aggregator: 'first', // one per service, however many processes serve it
  }).set({ version: BUILD_INFO.version, node_version: BUILD_INFO.node }, 1);
  return registry;
}

/** Latency buckets (seconds) fine enough to read a p99 of a sub-millisecond path. */
export const LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02,
  0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

export { Counter, Gauge, Histogram, Registry };
