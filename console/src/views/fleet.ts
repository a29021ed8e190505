import type { Fleet } from '../api.ts';
import { fmt, h, stat, table } from '../dom.ts';
import { fleetWindow, windowOf, type Sample } from '../stats.ts';

const STATUSES = ['ready', 'registering', 'degraded', 'offline'];
/** Rates and p99s over this window of polls. */
const WINDOW_MS = 30_000;

/** Used slots over time: a sparkline of the samples kept. */
function loadChart(samples: readonly Sample[]): SVGElement {
  const width = 320;
  const height = 60;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  const points = samples.map((s) => {
    const n = s.fleet.nodes;
    return n.slots > 0 ? (n.slots - n.free) / n.slots : 0;
  });
  svg.setAttribute('aria-label', `slots in use over the last ${samples.length} polls`);
  if (points.length > 1) {
    const line = document.createElementNS(ns, 'polyline');
    const step = width / (points.length - 1);
    line.setAttribute(
      'points',
      points.map((p, i) => `${(i * step).toFixed(1)},${(height - p * height).toFixed(1)}`).join(' '),
    );
    svg.append(line);
  }
  return svg;
}

export function renderFleet(samples: readonly Sample[]): HTMLElement {
  const last = samples.at(-1);
  if (!last) return h('p', { class: 'muted' }, 'loading…');
  const f: Fleet = last.fleet;
  const w = windowOf(samples, WINDOW_MS);
  // every live selector's figures, each differenced against itself, then summed / merged
  const fw = w ? fleetWindow(w) : null;
  const counted = fw ? `${fw.selectors} selector${fw.selectors === 1 ? '' : 's'}` : 'all selectors';
  const conflictsTotal = (f.selectors ?? [f.selector]).reduce((n, s) => n + s.reservation_conflicts, 0);
  const oldestShard = Math.max(0, ...f.snapshot.shards.map((s) => s.age_ms));
  const used = f.nodes.slots - f.nodes.free;
  return h(
    'section',
    { id: 'fleet' },
    h('h1', {}, 'Fleet'),
    h(
      'div',
      { class: 'stats', 'data-section': 'status' },
      ...STATUSES.map((s) => stat(s, f.nodes.by_status[s] ?? 0, `status-${s}`)),
      stat('draining', f.nodes.draining, 'draining'),
      stat('quarantined', f.nodes.quarantined, 'quarantined'),
    ),
    h(
      'div',
      { class: 'stats', 'data-section': 'rates' },
      stat(
        'heartbeats/s',
        fmt(f.heartbeats.per_s),
        'heartbeats',
        `nodes heard in the last ${f.heartbeats.window_ms / 1000} s ÷ ${f.heartbeats.window_ms / 1000}`,
      ),
      stat(
        'jobs/s',
        fw ? fmt(fw.jobsPerS, 2) : '–',
        'jobs',
        `placements per second over the last ${WINDOW_MS / 1000} s, summed over ${counted}`,
      ),
      stat(
        'choice p99 (ms)',
        fmt(fw?.choiceP99Ms, 3),
        'choice-p99',
        `in-memory selection over the last ${WINDOW_MS / 1000} s, ${counted} merged`,
      ),
      stat(
        'POST p99 (ms)',
        fmt(fw?.postP99Ms, 1),
        'post-p99',
        `POST /v1/jobs inside the selectors over the last ${WINDOW_MS / 1000} s, ${counted} merged`,
      ),
      stat(
        'lag p50/p99 (ms, this selector)',
        `${fmt(f.snapshot.lag_ms.p50, 0)} / ${fmt(f.snapshot.lag_ms.p99, 0)}`,
        'lag',
        'pipeline lag: a heartbeat that changed a node received → visible to selection in this selector',
      ),
      stat(
        'oldest shard (ms, this selector)',
        fmt(oldestShard, 0),
        'shard-age',
        'age of the oldest shard version in this replica',
      ),
      stat(
        'reservation conflicts',
        `${conflictsTotal}${fw?.conflictsPerS ? ` (${fmt(fw.conflictsPerS, 2)}/s)` : ''}`,
        'conflicts',
        'since each live selector started, summed (and per second over the window)',
      ),
      stat(
        'selectors',
        (f.selectors ?? [f.selector]).length,
        'selectors',
        'selectors that published figures in the last 10 s',
      ),
    ),
    h(
      'div',
      { class: 'load' },
      h('h2', {}, 'Slots in use'),
      h(
        'p',
        {},
        `${used} of ${f.nodes.slots} (${f.nodes.slots ? fmt((100 * used) / f.nodes.slots, 0) : 0} %) on usable nodes`,
      ),
      loadChart(samples),
    ),
    h('h2', {}, 'Pools (directed pairs)'),
    table(
      ['pool', 'nodes', 'usable', 'slots', 'free'],
      f.pools,
      (p) => [p.pool, p.nodes, p.ready, p.slots, h('span', { class: p.free === 0 ? 'warn' : null }, p.free)],
      { rowId: (p) => p.pool, empty: 'no pools yet' },
    ),
  );
}
