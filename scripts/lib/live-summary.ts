/**
 * The one-screen summary `npm start` keeps up to date: reads every service's /metrics and a
 * selector's /v1/snapshot and /v1/nodes, and prints rates over the last interval.
 */
export interface SummaryTargets {
  gateways: string[];
  selectors: string[];
  worker: string;
  apiKey: string;
}

type Samples = Map<string, number>;

async function scrapeAll(url: string): Promise<Samples> {
  const out: Samples = new Map();
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith('sb_')) continue;
      const at = line.lastIndexOf(' ');
      out.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
  } catch {
    // a service that does not answer counts as zero this round
  }
  return out;
}

function sum(samples: Samples[], prefix: string, match = ''): number {
  let total = 0;
  for (const s of samples) for (const [k, v] of s) if (k.startsWith(prefix) && k.includes(match)) total += v;
  return total;
}

/** p-quantile (ms) from cumulative histogram buckets `<name>_bucket{le="..."}` summed over samples. */
function quantileMs(samples: Samples[], name: string, q: number): number | null {
  const buckets = new Map<number, number>();
  for (const s of samples) {
    for (const [k, v] of s) {
      const m = k.startsWith(`${name}_bucket{`) ? /le="([^"]+)"/.exec(k) : null;
      if (m)
        buckets.set(
          m[1] === '+Inf' ? Infinity : Number(m[1]),
          (buckets.get(m[1] === '+Inf' ? Infinity : Number(m[1])) ?? 0) + v,
        );
    }
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const hit = sorted.find(([, c]) => c >= q * total);
  return hit && Number.isFinite(hit[0]) ? hit[0] * 1000 : null;
}

const fmt = (n: number | null, digits = 1) => (n === null ? '–' : n.toFixed(digits));

export function startLiveSummary(
  t: SummaryTargets,
  intervalMs: number,
  print: (block: string) => void,
): { stop(): void } {
  let previous: { at: number; heartbeats: number; placed: number } | null = null;
  const headers = { authorization: `Bearer ${t.apiKey}` };
  const tick = async () => {
    const [gws, sels, worker] = await Promise.all([
      Promise.all(t.gateways.map(scrapeAll)),
      Promise.all(t.selectors.map(scrapeAll)),
      scrapeAll(t.worker),
    ]);
    let snapshot: {
      nodes?: number;
      shards?: { version: number }[];
      lag_ms?: { p50: number | null; p99: number | null };
    } = {};
    let ready = 0;
    try {
      snapshot = (await (
        await fetch(`${t.selectors[0]}/v1/snapshot`, { headers })
      ).json()) as typeof snapshot;
      const nodes = (await (await fetch(`${t.selectors[0]}/v1/nodes`, { headers })).json()) as {
        nodes: { status: string; draining: boolean }[];
      };
      ready = nodes.nodes.filter((n) => n.status === 'ready' && !n.draining).length;
    } catch {
      // selector not ready yet
    }
    const now = Date.now();
    const heartbeats = sum(gws, 'sb_heartbeats_total', 'outcome="applied"');
    const placed = sum(sels, 'sb_jobs_total', 'outcome="placed"');
    const dt = previous ? (now - previous.at) / 1000 : 0;
    const rate = (v: number, p: number | undefined) => (previous && dt > 0 ? (v - (p ?? 0)) / dt : null);
    const versions = (snapshot.shards ?? []).reduce((a, s) => a + s.version, 0);
    const lines = [
      `── Switchboard ${new Date(now).toISOString().slice(11, 19)} ─────────────────────────────────────────`,
      `nodes ready       ${ready} / ${snapshot.nodes ?? 0}   ws connections ${sum(gws, 'sb_ws_connections')}`,
      `heartbeats/s      ${fmt(rate(heartbeats, previous?.heartbeats))}   (gateway p99 ${fmt(quantileMs(gws, 'sb_heartbeat_duration_seconds', 0.99), 2)} ms)`,
      `snapshot          versions Σ ${versions}   deltas ${sum([worker], 'sb_snapshot_flushes_total', 'published')}   lag (change received → selectable) p50/p99 ${fmt(snapshot.lag_ms?.p50 ?? null, 0)}/${fmt(snapshot.lag_ms?.p99 ?? null, 0)} ms`,
      `jobs/s            ${fmt(rate(placed, previous?.placed))}   placed ${placed}   no node ${sum(sels, 'sb_jobs_total', 'no_node')}   timeouts ${sum([worker], 'sb_job_timeouts_total')}`,
      `selection         p50 ${fmt(quantileMs(sels, 'sb_selection_duration_seconds', 0.5), 3)} ms   p99 ${fmt(quantileMs(sels, 'sb_selection_duration_seconds', 0.99), 3)} ms   reservation conflicts ${sum(sels, 'sb_reservation_conflicts_total')}`,
    ];
    previous = { at: now, heartbeats, placed };
    print(lines.join('\n'));
  };
  const timer = setInterval(() => void tick(), intervalMs);
  return { stop: () => clearInterval(timer) };
}
