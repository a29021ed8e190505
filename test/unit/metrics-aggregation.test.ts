import { AggregatorRegistry, type Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createGatewayMetrics } from '../../services/gateway/gateway-metrics.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';

/**
 * A gateway of SB_GATEWAY_PROCESSES > 1 answers /metrics with its children's registries
 * aggregated by prom-client's AggregatorRegistry (shared/process-cluster.ts), each metric by its
 * own aggregator: counters, histograms and per-process amounts sum; a fact (build info, the fd
 * limit) is not multiplied by the number of processes; the event-loop lag is the worst child's.
 */
describe('metrics of a multi-process gateway, aggregated', () => {
  /** gauges whose sum over processes means something (an amount each process holds) */
  const SUMMED_GAUGES = new Set([
    'sb_ws_connections',
    'nodejs_active_handles',
    'nodejs_active_handles_total',
    'nodejs_active_requests',
    'nodejs_active_requests_total',
    'nodejs_active_resources',
    'nodejs_active_resources_total',
    'nodejs_external_memory_bytes',
    'nodejs_heap_size_total_bytes',
    'nodejs_heap_size_used_bytes',
    'nodejs_heap_space_size_available_bytes',
    'nodejs_heap_space_size_total_bytes',
    'nodejs_heap_space_size_used_bytes',
    'process_heap_bytes',
    'process_open_fds',
    'process_resident_memory_bytes',
    'process_virtual_memory_bytes',
  ]);

  const child = (connections: number): { registry: Registry } => {
    const registry = createMetricsRegistry('gateway');
    createGatewayMetrics(registry).wsConnections.set(connections);
    return { registry };
  };

  it('every gauge either sums an amount or names its aggregator', async () => {
    const gauges = (await child(0).registry.getMetricsAsJSON()).filter((m) => String(m.type) === 'gauge');
    const summed = gauges
      .filter((m) => (m as { aggregator?: string }).aggregator === 'sum')
      .map((m) => m.name);
    expect(summed.filter((name) => !SUMMED_GAUGES.has(name))).toEqual([]);
  });

  it('two children: sb_build_info stays 1, connections add up, the fd limit is one process’s, lag the worst', async () => {
    const children = [child(3), child(4)];
    const json = await Promise.all(children.map((c) => c.registry.getMetricsAsJSON()));
    const text = await AggregatorRegistry.aggregate(json).metrics();
    const value = (name: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
        .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
    expect(value('sb_build_info')).toEqual([1]);
    expect(value('nodejs_version_info')).toEqual([1]);
    expect(value('sb_ws_connections')).toEqual([7]);
    const maxFds = json[0]!.find((m) => m.name === 'process_max_fds')?.values[0]?.value;
    if (maxFds !== undefined) expect(value('process_max_fds')).toEqual([maxFds]);
    const p99s = json.map((j) =>
      Number(j.find((m) => m.name === 'nodejs_eventloop_lag_p99_seconds')?.values[0]?.value),
    );
    expect(value('nodejs_eventloop_lag_p99_seconds')).toEqual([Math.max(...p99s)]);
    expect(value('process_start_time_seconds')).toHaveLength(1);
  });
});
