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

/** prom-client's record of an unlabelled histogram (its `hashMap['']`). */
interface HistogramEntry {
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

/**
 * An unlabelled histogram for a hot path: `record(value)` counts into plain arrays, folded into
 * prom-client's histogram when it is collected (scrape, cluster aggregation). prom-client's own
 * `observe` allocates ~200 B per call (a closure, a labels object, a hash; bench/alloc.ts). The
 * fold writes prom-client's record of the unlabelled series directly; where that record is not
 * as expected (another prom-client), it observes each bucket's upper bound instead (sum then
 * approximate). test/unit/folded-histogram.test.ts compares the exposition with `observe`'s.
 */
export class FoldedHistogram extends Histogram {
  private readonly pending: Float64Array;
  private pendingSum = 0;
  private pendingCount = 0;
  private readonly bounds: number[];

  constructor(config: { name: string; help: string; buckets: number[]; registers: Registry[] }) {
    super({
      ...config,
      collect() {
        (this as unknown as FoldedHistogram).fold();
      },
    });
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    this.pending = new Float64Array(this.bounds.length + 1);
  }

  /** One observation, allocation-free. */
  record(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.pending[i]! += 1;
    this.pendingSum += value;
    this.pendingCount++;
  }

  private fold(): void {
    if (this.pendingCount === 0) return;
    const entry = (this as unknown as { hashMap?: Record<string, HistogramEntry> }).hashMap?.[''];
    const direct =
      entry !== undefined &&
      typeof entry.sum === 'number' &&
      typeof entry.count === 'number' &&
      this.bounds.every((b) => typeof entry.bucketValues[b] === 'number');
    for (let i = 0; i < this.pending.length; i++) {
      const n = this.pending[i]!;
      if (n === 0) continue;
      const bound = i < this.bounds.length ? this.bounds[i]! : Infinity;
      // above the last bound: only in count and sum (prom-client's +Inf is the count)
      if (direct) {
        if (bound !== Infinity) entry.bucketValues[bound]! += n;
      } else for (let k = 0; k < n; k++) this.observe(bound === Infinity ? this.bounds.at(-1)! * 2 : bound);
      this.pending[i] = 0;
    }
    if (direct) {
      entry.sum += this.pendingSum;
      entry.count += this.pendingCount;
    }
    this.pendingSum = 0;
    this.pendingCount = 0;
  }
}
