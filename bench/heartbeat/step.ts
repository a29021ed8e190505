/**
 * One measured step of the heartbeat benchmark: offer a rate open-loop, let it settle, then
 * take the gateway's Prometheus counters, the load generator's counters and /proc CPU times
 * at both ends of the window, stop, and wait for the gateway to drain.
 */
import { CpuMeter, type CpuSnapshot, type CpuUsage } from '../lib/cpu.ts';
import { GcTrace, type GcTotals, type GcWindow } from '../lib/gc-trace.ts';
import type { IpcClient } from '../lib/ipc.ts';
import { byLabel, diffRecords, histogramOf, scrape, sumOf, type Scrape } from '../lib/prometheus.ts';
import { histogramDelta, histogramQuantile, reviveHistogram, type HistogramData } from '../lib/stats.ts';
import type { LoadCounters } from './ws-load.child.ts';

/**
 * A step keeps up when the gateway applies at least this share of what was sent in the window
 * AND its backlog (sent − handled) grows by no more than this share of it: a rate the gateway
 * only "handles" by queueing more and more is not sustained.
 */
export const KEEP_UP_SHARE = 0.99;
/** The load generator keeps up when it sends this share of the offered rate. */
const LOADGEN_SHARE = 0.97;
const DRAIN_POLL_MS = 250;
const DRAIN_DEADLINE_MS = 20_000;

export interface StepContext {
  loadgen: IpcClient;
  metricsUrl: string;
  cpu: CpuMeter;
  /** The gateway's --trace-gc-nvp lines (allocation per heartbeat), when it runs with them. */
  gcTrace?: GcTrace;
  /** Extra arguments of the load generator's `start` (e.g. `{ burst: true }`). */
  startArgs?: Record<string, unknown>;
}

/**
 * Extra measurements over a step's measured window (e.g. another service's metrics), taken
 * concurrently with the step's own snapshots so that both cover the same window.
 */
export interface WindowHooks {
  /** The measured window opens. */
  start(): Promise<void>;
  /** The measured window closes (the load is still running). */
  end(): Promise<void>;
}

interface Snapshot {
  scrape: Scrape;
  load: LoadCounters;
  cpu: CpuSnapshot;
  gc: GcTotals | null;
}

export interface LatencyMs {
  count: number;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  /** Set when a quantile fell beyond the largest finite bucket (the value is a lower bound). */
  overflow: boolean;
}

export interface StepResult {
  offeredRate: number;
  windowS: number;
  sent: number;
  sentRate: number;
  applied: number;
  appliedRate: number;
  /** sb_heartbeats_total deltas by outcome (applied, stale, error codes). */
  outcomes: Record<string, number>;
  /** sb_rejected_total deltas by reason (shed before any work). */
  rejected: Record<string, number>;
  /** Error frames the nodes received, by code. */
  errorFrames: Record<string, number>;
  notSent: { dropped: number; notOpen: number };
  socketCloses: Record<string, number>;
  /** Server side, sb_heartbeat_duration_seconds: frame received → Redis write done. */
  latencyMs: LatencyMs;
  /** Heartbeats sent but not yet handled by the gateway (at the window's start / end). */
  backlog: { atStart: number; atEnd: number };
  /** How late the load generator sent versus its schedule. */
  loadgenLatenessMs: { p50: number | null; p99: number | null };
  cpu: CpuUsage;
  /** Gateway garbage collection in the window, by kind (minor, major, incremental, weakcb). */
  gc: Record<string, { count: number; ms: number; over10ms: number }>;
  /**
   * From the gateway's --trace-gc-nvp lines over the window: bytes allocated ÷ heartbeats
   * handled, and its GC pauses (every pause, unlike prom-client's). Null without the trace.
   */
  alloc: (GcWindow & { bytesPerHeartbeat: number | null }) | null;
  /** Gateway CPU time ÷ heartbeats handled in the window, µs. */
  gatewayCpuUsPerHeartbeat: number | null;
  /**
   * prom-client's event-loop delay over the window (it resets on each scrape). It samples every
   * 10 ms and the delays include that interval: compare p99 with min, not with 0.
   */
  gatewayEventLoopLagMs: { min: number; p99: number } | null;
  drain: { ms: number; backlogAtStop: number; complete: boolean };
  pass: boolean;
  /** Why the step did not keep up, when it did not. */
  limitedBy: 'gateway' | 'load generator' | null;
  notes: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function snapshot(ctx: StepContext): Promise<Snapshot> {
  const cpu = ctx.cpu.snapshot();
  const [s, load] = await Promise.all([
    scrape(ctx.metricsUrl),
    ctx.loadgen.request<LoadCounters>('counters'),
  ]);
  return { scrape: s, load, cpu, gc: ctx.gcTrace?.snapshot() ?? null };
}

/** Every heartbeat frame the gateway has finished with: handled (any outcome) or shed. */
function handledTotal(s: Scrape): number {
  return sumOf(s, 'sb_heartbeats_total') + sumOf(s, 'sb_rejected_total');
}

function quantileMs(h: HistogramData, q: number): { value: number | null; overflow: boolean } {
  const r = histogramQuantile(h, q);
  return r ? { value: r.value * 1000, overflow: r.overflow } : { value: null, overflow: false };
}

/** Percentiles (ms) of a histogram delta in seconds, interpolated within buckets. */
export function latencyOf(h: HistogramData): LatencyMs {
  const qs = [0.5, 0.9, 0.99, 0.999].map((q) => quantileMs(h, q));
  return {
    count: h.count,
    mean: h.count > 0 ? (h.sum / h.count) * 1000 : null,
    p50: qs[0]!.value,
    p90: qs[1]!.value,
    p99: qs[2]!.value,
    p999: qs[3]!.value,
    overflow: qs.some((q) => q.overflow),
  };
}

async function waitDrained(ctx: StepContext, sentTotal: number): Promise<StepResult['drain']> {
  const started = performance.now();
  let last = -1;
  let backlogAtStop = -1;
  let still = 0;
  for (;;) {
    const handled = handledTotal(await scrape(ctx.metricsUrl));
    if (backlogAtStop < 0) backlogAtStop = Math.max(0, sentTotal - handled);
    if (handled >= sentTotal)
      return { ms: Math.round(performance.now() - started), backlogAtStop, complete: true };
    still = handled === last ? still + 1 : 0;
    last = handled;
    // Nothing moved for 2 s: the rest is lost (e.g. on sockets the gateway closed).
    if (still >= 8 || performance.now() - started > DRAIN_DEADLINE_MS) {
      return { ms: Math.round(performance.now() - started), backlogAtStop, complete: false };
    }
    await sleep(DRAIN_POLL_MS);
  }
}

/** Garbage collection between two scrapes of a Node service, by kind. */
export function gcDelta(a: Scrape, b: Scrape): StepResult['gc'] {
  const out: StepResult['gc'] = {};
  const kinds = Object.keys(byLabel(b, 'nodejs_gc_duration_seconds_count', 'kind'));
  for (const kind of kinds) {
    const h = histogramDelta(
      histogramOf(a, 'nodejs_gc_duration_seconds', { kind }),
      histogramOf(b, 'nodejs_gc_duration_seconds', { kind }),
    );
    const upTo10ms = h.buckets.filter((x) => x.le <= 0.01).at(-1)?.count ?? 0;
    if (h.count > 0)
      out[kind] = { count: h.count, ms: Math.round(h.sum * 1000), over10ms: h.count - upTo10ms };
  }
  return out;
}

const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** Offers `rate` for settleS + measureS, measuring the last measureS; then drains. */
export async function measureStep(
  ctx: StepContext,
  rate: number,
  settleS: number,
  measureS: number,
  hooks?: WindowHooks,
): Promise<StepResult> {
  await ctx.loadgen.request('start', { ...ctx.startArgs, rate });
  await sleep(settleS * 1000);
  const [a] = await Promise.all([snapshot(ctx), hooks?.start()]);
  await sleep(measureS * 1000);
  const [b] = await Promise.all([snapshot(ctx), hooks?.end()]);
  const stopped = await ctx.loadgen.request<LoadCounters>('stop');
  const drain = await waitDrained(ctx, stopped.sent);

  const windowS = (b.scrape.at - a.scrape.at) / 1000;
  const loadWindowS = (b.load.at - a.load.at) / 1000;
  const outcomes = diffRecords(
    byLabel(a.scrape, 'sb_heartbeats_total', 'outcome'),
    byLabel(b.scrape, 'sb_heartbeats_total', 'outcome'),
  );
  const rejected = diffRecords(
    byLabel(a.scrape, 'sb_rejected_total', 'reason'),
    byLabel(b.scrape, 'sb_rejected_total', 'reason'),
  );
  const hist = histogramDelta(
    histogramOf(a.scrape, 'sb_heartbeat_duration_seconds'),
    histogramOf(b.scrape, 'sb_heartbeat_duration_seconds'),
  );
  const lateness = histogramDelta(reviveHistogram(a.load.lateness), reviveHistogram(b.load.lateness));
  const sent = b.load.sent - a.load.sent;
  const applied = outcomes['applied'] ?? 0;
  const errorFrames = diffRecords(a.load.errorFrames, b.load.errorFrames);
  const notSent = { dropped: b.load.dropped - a.load.dropped, notOpen: b.load.notOpen - a.load.notOpen };
  const socketCloses = diffRecords(a.load.closes, b.load.closes);
  const lagP99 = sumOf(b.scrape, 'nodejs_eventloop_lag_p99_seconds');
  const lagMin = sumOf(b.scrape, 'nodejs_eventloop_lag_min_seconds');

  const handled = handledTotal(b.scrape) - handledTotal(a.scrape);
  const gcWindow = a.gc && b.gc ? GcTrace.delta(a.gc, b.gc) : null;
  const gatewayCpu = CpuMeter.usage(a.cpu, b.cpu).processes['gateway'];
  const sentRate = sent / loadWindowS;
  const appliedRate = applied / windowS;
  const backlog = {
    atStart: a.load.sent - handledTotal(a.scrape),
    atEnd: b.load.sent - handledTotal(b.scrape),
  };
  const notes: string[] = [];
  const loadgenKeptUp = sentRate >= LOADGEN_SHARE * rate;
  const backlogGrew = backlog.atEnd - backlog.atStart > Math.max((1 - KEEP_UP_SHARE) * sent, 50);
  const gatewayKeptUp = appliedRate >= KEEP_UP_SHARE * sentRate && !backlogGrew;
  const failures =
    total(errorFrames) +
    total(rejected) +
    notSent.dropped +
    notSent.notOpen +
    total(socketCloses) +
    (outcomes['stale'] ?? 0);
  if (!loadgenKeptUp) notes.push(`load generator sent ${Math.round(sentRate)}/s of ${rate}/s offered`);
  if (!gatewayKeptUp) {
    notes.push(
      `gateway applied ${Math.round(appliedRate)}/s of ${Math.round(sentRate)}/s sent, backlog ${backlog.atStart} → ${backlog.atEnd}`,
    );
  }
  if (failures > 0) notes.push(`${failures} heartbeats shed, refused, not sent or stale`);
  if (!drain.complete) notes.push(`gateway did not finish ${stopped.sent} sent heartbeats after the stop`);
  const pass = loadgenKeptUp && gatewayKeptUp && failures === 0 && drain.complete;

  return {
    offeredRate: rate,
    windowS,
    sent,
    sentRate,
    applied,
    appliedRate,
    outcomes,
    rejected,
    errorFrames,
    notSent,
    socketCloses,
    latencyMs: latencyOf(hist),
    backlog,
    loadgenLatenessMs: {
      p50: histogramQuantile(lateness, 0.5)?.value ?? null,
      p99: histogramQuantile(lateness, 0.99)?.value ?? null,
    },
    cpu: CpuMeter.usage(a.cpu, b.cpu),
    gc: gcDelta(a.scrape, b.scrape),
    alloc: gcWindow && {
      ...gcWindow,
      bytesPerHeartbeat: handled > 0 ? Math.round(gcWindow.allocatedBytes / handled) : null,
    },
    gatewayCpuUsPerHeartbeat:
      gatewayCpu != null && handled > 0 ? Math.round(((gatewayCpu / 100) * windowS * 1e6) / handled) : null,
    gatewayEventLoopLagMs: lagP99 > 0 ? { min: lagMin * 1000, p99: lagP99 * 1000 } : null,
    drain,
    pass,
    limitedBy: pass ? null : loadgenKeptUp ? 'gateway' : 'load generator',
    notes,
  };
}
