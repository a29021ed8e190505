/**
 * What the worker did over a measured window: its Prometheus metrics (flushes, nodes per delta,
 * flush duration, staleness, GC) and the shards' snapshot versions read from
 * Redis, combined with the gateway's applied heartbeats and the worker's /proc CPU time.
 */
import type { Redis } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import { gcDelta, latencyOf, type LatencyMs, type StepResult } from '../heartbeat/step.ts';
import { byLabel, diffRecords, histogramOf, scrape, sumOf, type Scrape } from '../lib/prometheus.ts';
import { histogramDelta } from '../lib/stats.ts';

export interface WorkerMark {
  scrape: Scrape;
  /** Sum over the shards of `{<prefix>:s<k>}:ver`: one increment per published delta. */
  versions: number;
}

async function totalVersion(redis: Redis, keys: KeyBuilder): Promise<number> {
  const names = Array.from({ length: keys.shards }, (_, k) => keys.shard(k).version);
  const values = await redis.mget(...names);
  return values.reduce((sum, v) => sum + Number(v ?? 0), 0);
}

export async function markWorker(metricsUrl: string, redis: Redis, keys: KeyBuilder): Promise<WorkerMark> {
  const [s, versions] = await Promise.all([scrape(metricsUrl), totalVersion(redis, keys)]);
  return { scrape: s, versions };
}

export interface WorkerWindow {
  windowS: number;
  /** sb_snapshot_flushes_total deltas by outcome (published, empty, recovered). */
  flushes: Record<string, number>;
  /** Snapshot versions published over all shards (Redis), = deltas. */
  deltas: number;
  deltasPerSec: number;
  /** The gateway's applied heartbeats/s over the same window. */
  heartbeatsPerSec: number;
  /** deltas/s ÷ heartbeats/s. */
  coalescing: number | null;
  /** sb_snapshot_delta_nodes: sum ÷ count over the window. */
  nodesPerDelta: number | null;
  /** sb_snapshot_published_nodes_total delta. */
  publishedNodes: number;
  publishedNodesPerSec: number;
  /**
   * Published nodes ÷ applied heartbeats: the share of heartbeats that (re)dirtied a node and
   * got it published. A lower bound of the significant share: a node dirtied again before its
   * flush ran is published once.
   */
  publishedPerHeartbeat: number | null;
  /** sb_snapshot_flush_duration_seconds (every flush, empty ones included). */
  flushMs: LatencyMs;
  /** sb_snapshot_lag_seconds: a change received (server time the node was marked dirty) → entry built. */
  stalenessMs: LatencyMs;
  /** % of one core (/proc), over the step's window. */
  cpuPct: number | null;
  /** Worker CPU time ÷ published nodes, µs. */
  cpuUsPerPublishedNode: number | null;
  /** Worker CPU time ÷ deltas, µs. */
  cpuUsPerDelta: number | null;
  reaperTicks: number;
  gc: StepResult['gc'];
  eventLoopLagMs: { min: number; p99: number } | null;
  rssBytes: number | null;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

/** Combines two marks with the step the window belongs to (heartbeats, CPU). */
export function workerWindow(a: WorkerMark, b: WorkerMark, step: StepResult): WorkerWindow {
  const windowS = (b.scrape.at - a.scrape.at) / 1000;
  const delta = (name: string) => sumOf(b.scrape, name) - sumOf(a.scrape, name);
  const hist = (name: string) => histogramDelta(histogramOf(a.scrape, name), histogramOf(b.scrape, name));
  const deltas = b.versions - a.versions;
  const publishedNodes = delta('sb_snapshot_published_nodes_total');
  const cpuPct = step.cpu.processes['worker'] ?? null;
  const cpuUs = cpuPct === null ? null : (cpuPct / 100) * step.windowS * 1e6;
  const lagP99 = sumOf(b.scrape, 'nodejs_eventloop_lag_p99_seconds');
  const rss = sumOf(b.scrape, 'process_resident_memory_bytes');
  return {
    windowS,
    flushes: diffRecords(
      byLabel(a.scrape, 'sb_snapshot_flushes_total', 'outcome'),
      byLabel(b.scrape, 'sb_snapshot_flushes_total', 'outcome'),
    ),
    deltas,
    deltasPerSec: deltas / windowS,
    heartbeatsPerSec: step.appliedRate,
    coalescing: ratio(deltas / windowS, step.appliedRate),
    nodesPerDelta: ratio(delta('sb_snapshot_delta_nodes_sum'), delta('sb_snapshot_delta_nodes_count')),
    publishedNodes,
    publishedNodesPerSec: publishedNodes / windowS,
    publishedPerHeartbeat: ratio(publishedNodes, step.applied),
    flushMs: latencyOf(hist('sb_snapshot_flush_duration_seconds')),
    stalenessMs: latencyOf(hist('sb_snapshot_lag_seconds')),
    cpuPct,
    cpuUsPerPublishedNode: cpuUs === null ? null : ratio(cpuUs, publishedNodes),
    cpuUsPerDelta: cpuUs === null ? null : ratio(cpuUs, deltas),
    reaperTicks: delta('sb_reaper_ticks_total'),
    gc: gcDelta(a.scrape, b.scrape),
    eventLoopLagMs:
      lagP99 > 0
        ? { min: sumOf(b.scrape, 'nodejs_eventloop_lag_min_seconds') * 1000, p99: lagP99 * 1000 }
        : null,
    rssBytes: rss || null,
  };
}

export interface SettleResult {
  seconds: number;
  checkpointEntries: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * After registration: waits until every node has a checkpoint entry and no shard has dirty or
 * taken nodes left.
 */
export async function waitForSnapshotSettled(
  metricsUrl: string,
  redis: Redis,
  keys: KeyBuilder,
  nodes: number,
  deadlineMs = 120_000,
): Promise<SettleResult> {
  const started = performance.now();
  for (;;) {
    const shards = Array.from({ length: keys.shards }, (_, k) => keys.shard(k));
    const pipeline = redis.pipeline();
    for (const k of shards) pipeline.hlen(k.checkpoint).scard(k.dirty).exists(k.dirtyTaken);
    const replies = ((await pipeline.exec()) ?? []).map(([err, v]) => {
      if (err) throw err;
      return Number(v);
    });
    let entries = 0;
    let dirty = 0;
    let taken = 0;
    for (let i = 0; i < replies.length; i += 3) {
      entries += replies[i]!;
      dirty += replies[i + 1]!;
      taken += replies[i + 2]!;
    }
    const result = { seconds: (performance.now() - started) / 1000, checkpointEntries: entries };
    if (entries >= nodes && dirty === 0 && taken === 0) return result;
    if (performance.now() - started > deadlineMs) {
      throw new Error(
        `the worker did not settle after registration within ${deadlineMs / 1000} s: ` +
          `${entries} of ${nodes} checkpoint entries, ${dirty} dirty nodes, ` +
          `${taken} shards with a taken batch`,
      );
    }
    await sleep(250);
  }
}
