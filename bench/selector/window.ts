/**
 * One measured window of the selector scenario's jobs phases: the job client's own window
 * (client-side latency, statuses, selection_us from the answers) together with the selector's,
 * the gateway's and the worker's metrics and /proc CPU, all marked at the same two moments.
 */
import type { Redis } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import { gcDelta, latencyOf, type LatencyMs, type StepResult } from '../heartbeat/step.ts';
import { CpuMeter, type CpuSnapshot, type CpuUsage } from '../lib/cpu.ts';
import type { IpcClient } from '../lib/ipc.ts';
import { byLabel, diffRecords, histogramOf, scrape, sumOf, type Scrape } from '../lib/prometheus.ts';
import { histogramDelta } from '../lib/stats.ts';
import { markWorker, type WorkerMark } from '../snapshot/worker-window.ts';
import type { WindowStats } from './job-client.child.ts';
import type { PingSummary } from './redis-ping.child.ts';

export interface JobWindowContext {
  client: IpcClient;
  /** The Redis PING probe beside the selector. */
  pinger: IpcClient;
  selectorUrl: string;
  apiKey: string;
  gatewayMetricsUrl: string;
  workerMetricsUrl: string;
  redis: Redis;
  keys: KeyBuilder;
  cpu: CpuMeter;
}

interface Mark {
  selector: Scrape;
  gateway: Scrape;
  worker: WorkerMark;
  cpu: CpuSnapshot;
  /** INFO commandstats: calls per command since Redis started. */
  commands: Record<string, number>;
}

/** Calls per command from `INFO commandstats` (`cmdstat_evalsha:calls=12,...`). */
async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    out[m[1]!] = Number(m[2]);
  return out;
}

export interface JobWindowResult {
  label: string;
  windowS: number;
  client: WindowStats;
  /** PING round trips from the selector's core, ms (one every 10 ms). */
  redisPingMs: PingSummary;
  selector: {
    /** sb_selection_duration_seconds: select() alone, in memory. */
    selectionMs: LatencyMs;
    /** sb_job_request_duration_seconds: POST /v1/jobs inside the selector. */
    requestMs: LatencyMs;
    /** sb_jobs_total deltas by outcome. */
    jobs: Record<string, number>;
    reservationConflicts: number;
    gc: StepResult['gc'];
    eventLoopLagMs: { min: number; p99: number } | null;
    /** GET /v1/snapshot at the window's end: heartbeat → applied, last 2048 entries applied. */
    replicaStalenessMs: { p50: number | null; p99: number | null } | null;
  };
  /** The gateway over the same window. */
  heartbeats: { appliedPerSec: number; outcomes: Record<string, number>; rejected: Record<string, number> };
  /**
   * Redis commands over the window (INFO commandstats deltas, every client: selector, gateway,
   * worker, BullMQ; the bench's own marks add ~10), in total and per command.
   */
  redisCommands: { total: number; byCommand: Record<string, number> };
  /** Snapshot deltas published over the window (all shards), and nodes in them (worker). */
  snapshot: { deltasPerSec: number; publishedNodesPerSec: number };
  cpu: CpuUsage;
}

async function replicaStaleness(
  ctx: JobWindowContext,
): Promise<JobWindowResult['selector']['replicaStalenessMs']> {
  try {
    const res = await fetch(`${ctx.selectorUrl}/v1/snapshot`, {
      headers: { authorization: `Bearer ${ctx.apiKey}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) return null;
    const body = (await res.json()) as { lag_ms?: { p50: number | null; p99: number | null } };
    return body.lag_ms ?? null;
  } catch {
    return null;
  }
}

async function mark(ctx: JobWindowContext): Promise<Mark> {
  const [selector, gateway, worker, commands] = await Promise.all([
    scrape(`${ctx.selectorUrl}/metrics`),
    scrape(ctx.gatewayMetricsUrl),
    markWorker(ctx.workerMetricsUrl, ctx.redis, ctx.keys),
    commandCalls(ctx.redis),
  ]);
  return { selector, gateway, worker, commands, cpu: ctx.cpu.snapshot() };
}

/** Marks a window: `start()` when it opens, `end()` when it closes, then `result()`. */
export class JobWindow {
  private a: Mark | null = null;
  private b: Mark | null = null;
  private stats: WindowStats | null = null;
  private ping: PingSummary = null;
  private staleness: JobWindowResult['selector']['replicaStalenessMs'] = null;

  constructor(
    private readonly ctx: JobWindowContext,
    readonly label: string,
  ) {}

  async start(): Promise<void> {
    const [, , m] = await Promise.all([
      this.ctx.client.request('window-start'),
      this.ctx.pinger.request('window-start'),
      mark(this.ctx),
    ]);
    this.a = m;
  }

  async end(): Promise<void> {
    // The client stops recording at once; its stats arrive when the window's requests are done.
    const stats = this.ctx.client.request<WindowStats>('window-end', {}, 60_000);
    stats.catch(() => undefined);
    const [m, staleness, ping] = await Promise.all([
      mark(this.ctx),
      replicaStaleness(this.ctx),
      this.ctx.pinger.request<PingSummary>('window-end'),
    ]);
    this.b = m;
    this.staleness = staleness;
    this.ping = ping;
    this.stats = await stats;
  }

  result(): JobWindowResult {
    const { a, b, stats } = this;
    if (!a || !b || !stats) throw new Error(`window ${this.label} was not measured`);
    const windowS = (b.selector.at - a.selector.at) / 1000;
    const hist = (s: 'selector', name: string) =>
      histogramDelta(histogramOf(a[s], name), histogramOf(b[s], name));
    const lagP99 = sumOf(b.selector, 'nodejs_eventloop_lag_p99_seconds');
    const gwWindowS = (b.gateway.at - a.gateway.at) / 1000;
    const outcomes = diffRecords(
      byLabel(a.gateway, 'sb_heartbeats_total', 'outcome'),
      byLabel(b.gateway, 'sb_heartbeats_total', 'outcome'),
    );
    const published =
      sumOf(b.worker.scrape, 'sb_snapshot_published_nodes_total') -
      sumOf(a.worker.scrape, 'sb_snapshot_published_nodes_total');
    const workerS = (b.worker.scrape.at - a.worker.scrape.at) / 1000;
    return {
      label: this.label,
      windowS,
      client: stats,
      redisPingMs: this.ping,
      selector: {
        selectionMs: latencyOf(hist('selector', 'sb_selection_duration_seconds')),
        requestMs: latencyOf(hist('selector', 'sb_job_request_duration_seconds')),
        jobs: diffRecords(
          byLabel(a.selector, 'sb_jobs_total', 'outcome'),
          byLabel(b.selector, 'sb_jobs_total', 'outcome'),
        ),
        reservationConflicts:
          sumOf(b.selector, 'sb_reservation_conflicts_total') -
          sumOf(a.selector, 'sb_reservation_conflicts_total'),
        gc: gcDelta(a.selector, b.selector),
        eventLoopLagMs:
          lagP99 > 0
            ? { min: sumOf(b.selector, 'nodejs_eventloop_lag_min_seconds') * 1000, p99: lagP99 * 1000 }
            : null,
        replicaStalenessMs: this.staleness,
      },
      heartbeats: {
        appliedPerSec: (outcomes['applied'] ?? 0) / gwWindowS,
        outcomes,
        rejected: diffRecords(
          byLabel(a.gateway, 'sb_rejected_total', 'reason'),
          byLabel(b.gateway, 'sb_rejected_total', 'reason'),
        ),
      },
      redisCommands: (() => {
        const byCommand: Record<string, number> = {};
        for (const [name, calls] of Object.entries(b.commands)) {
          const d = calls - (a.commands[name] ?? 0);
          if (d > 0) byCommand[name] = d;
        }
        return { total: Object.values(byCommand).reduce((x, y) => x + y, 0), byCommand };
      })(),
      snapshot: {
        deltasPerSec: (b.worker.versions - a.worker.versions) / workerS,
        publishedNodesPerSec: published / workerS,
      },
      cpu: CpuMeter.usage(a.cpu, b.cpu),
    };
  }
}
