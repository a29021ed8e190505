import {
  bucketDelta,
  bucketTotal,
  histogramBuckets,
  histogramQuantile,
  SlidingWindow,
} from './histogram-window.ts';

/**
 * The one-screen summary `npm start` keeps up to date from every service's /metrics: rates and
 * percentiles over the last `windowMs` (histogram_quantile-style interpolation of bucket
 * differences, histogram-window.ts), the fleet from the selectors' gauges.
 */
export interface SummaryTargets {
  gateways: string[];
  selectors: string[];
  worker: string;
  /** A line under the figures (e.g. the job trickle's state), or nothing. */
  note?: () => string | null;
}

export interface SummaryOptions {
  /** How often it scrapes and prints. */
  intervalMs: number;
  /** Rates and percentiles cover this much time (or less, just after the start). */
  windowMs: number;
}

type Samples = Map<string, number>;

interface Scrape {
  gateways: Samples[];
  selectors: Samples[];
  worker: Samples;
}

/** The `sb_*` samples of a Prometheus text exposition: series (name and labels) → value. */
export function parseSamples(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('sb_')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrapeAll(url: string): Promise<Samples> {
  try {
    return parseSamples(await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text());
  } catch {
    return new Map(); // a service that does not answer counts as absent this round
  }
}

/** Σ of the series of `name` (any labels) whose labels include every `match`. */
export function sumOf(samples: Samples[], name: string, ...match: string[]): number {
  let total = 0;
  for (const s of samples)
    for (const [k, v] of s)
      if ((k === name || k.startsWith(`${name}{`)) && match.every((m) => k.includes(m))) total += v;
  return total;
}

/** One selector's gauge (they all export the same fleet): the largest. */
function gaugeOf(samples: Samples[], name: string, match: string): number | null {
  let best: number | null = null;
  for (const s of samples) {
    if (![...s.keys()].some((k) => k.startsWith(name))) continue;
    best = Math.max(best ?? 0, sumOf([s], name, match));
  }
  return best;
}

const fmt = (n: number | null, digits = 1) => (n === null ? '–' : n.toFixed(digits));

/** The summary's lines from the newest scrape and the one at the start of the window. */
export function summaryLines(
  now: number,
  latest: Scrape,
  base: { at: number; value: Scrape } | undefined,
): string[] {
  const seconds = base ? (now - base.at) / 1000 : 0;
  const rate = (pick: (s: Scrape) => number): number | null => {
    if (!base || seconds <= 0) return null;
    const d = pick(latest) - pick(base.value);
    return (d >= 0 ? d : pick(latest)) / seconds; // a restarted process counts from 0 again
  };
  const quantiles = (pick: (s: Scrape) => Samples[], name: string, qs: number[]) => {
    const delta = bucketDelta(
      histogramBuckets(pick(latest), name),
      base && histogramBuckets(pick(base.value), name),
    );
    const n = bucketTotal(delta);
    return { n, q: qs.map((q) => histogramQuantile(q, delta)) };
  };
  const ms = (v: number | null) => (v === null ? null : v * 1000);
  const hb = quantiles((s) => s.gateways, 'sb_heartbeat_duration_seconds', [0.5, 0.99]);
  const choice = quantiles((s) => s.selectors, 'sb_selection_duration_seconds', [0.5, 0.99]);
  const post = quantiles((s) => s.selectors, 'sb_job_request_duration_seconds', [0.5, 0.99]);
  const stale = quantiles((s) => s.selectors, 'sb_replica_lag_seconds', [0.5, 0.99]);
  const sels = latest.selectors;
  const ready = gaugeOf(sels, 'sb_nodes', 'status="ready"');
  const known = ['registering', 'ready', 'degraded', 'offline'].reduce(
    (a, status) => a + (gaugeOf(sels, 'sb_nodes', `status="${status}"`) ?? 0),
    0,
  );
  const window = base
    ? `rates and percentiles over the last ${Math.round(seconds)} s`
    : 'figures from the second scrape on';
  const versions = sumOf([latest.worker], 'sb_snapshot_version');
  return [
    `── Switchboard ${new Date(now).toISOString().slice(11, 19)} ── ${window} ─────`,
    `nodes ready       ${fmt(ready, 0)} / ${known}   unavailable ${fmt(gaugeOf(sels, 'sb_nodes_unavailable', ''), 0)}   slots used ${fmt(gaugeOf(sels, 'sb_slots', 'state="used"'), 0)} free ${fmt(gaugeOf(sels, 'sb_slots', 'state="free"'), 0)}   ws connections ${sumOf(latest.gateways, 'sb_ws_connections')}`,
    `heartbeats/s      ${fmt(rate((s) => sumOf(s.gateways, 'sb_heartbeats_total', 'outcome="applied"')))}   gateway p50/p99 ${fmt(ms(hb.q[0]!), 2)}/${fmt(ms(hb.q[1]!), 2)} ms`,
    `snapshot          versions Σ ${versions}   deltas/s ${fmt(rate((s) => sumOf([s.worker], 'sb_snapshot_flushes_total', 'outcome="published"')))}   lag p50/p99 ${fmt(ms(stale.q[0]!), 0)}/${fmt(ms(stale.q[1]!), 0)} ms`,
    `jobs/s            placed ${fmt(rate((s) => sumOf(s.selectors, 'sb_jobs_total', 'outcome="placed"')))}   no node ${fmt(rate((s) => sumOf(s.selectors, 'sb_jobs_total', 'outcome="no_node"')))}   finished ${fmt(rate((s) => sumOf(s.gateways, 'sb_job_results_total', 'status="finished"')))}   failed ${fmt(rate((s) => sumOf(s.gateways, 'sb_job_results_total', 'status="failed"')))}   timeouts ${fmt(rate((s) => sumOf([s.worker], 'sb_job_timeouts_total')))}`,
    `POST /v1/jobs     p50/p99 ${fmt(ms(post.q[0]!), 2)}/${fmt(ms(post.q[1]!), 2)} ms   choice p50/p99 ${fmt(ms(choice.q[0]!), 3)}/${fmt(ms(choice.q[1]!), 3)} ms   reservation conflicts/s ${fmt(
      rate((s) => sumOf(s.selectors, 'sb_reservation_conflicts_total')),
      2,
    )}`,
  ];
}

/**
 * Scrapes every `intervalMs` and prints the summary. `stop()` is final: a scrape still in flight
 * when it is called prints nothing (so nothing is drawn over what the caller prints next).
 */
export function startLiveSummary(
  t: SummaryTargets,
  options: SummaryOptions,
  print: (block: string) => void,
): { stop(): void } {
  const window = new SlidingWindow<Scrape>(options.windowMs);
  let stopped = false;
  let busy = false;
  const tick = async () => {
    if (busy) return; // a slow scrape: skip a round rather than pile them up
    busy = true;
    try {
      const [gateways, selectors, worker] = await Promise.all([
        Promise.all(t.gateways.map(scrapeAll)),
        Promise.all(t.selectors.map(scrapeAll)),
        scrapeAll(t.worker),
      ]);
      if (stopped) return;
      const now = Date.now();
      const scrape = { gateways, selectors, worker };
      window.push(now, scrape);
      const note = t.note?.();
      print([...summaryLines(now, scrape, window.baseline()), ...(note ? [note] : [])].join('\n'));
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), options.intervalMs);
  void tick();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
