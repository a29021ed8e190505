import type { Fleet } from '../api.ts';
import { fmt, h, stat, table } from '../dom.ts';
import { jobsPerSecond, rate, windowOf, windowQuantileMs, type Sample } from '../stats.ts';

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
  const sel = f.selector;
  const choiceP99 = w
    ? windowQuantileMs(w[0].fleet.selector.selection_seconds, sel.selection_seconds, 0.99)
    : null;
  const postP99 = w ? windowQuantileMs(w[0].fleet.selector.request_seconds, sel.request_seconds, 0.99) : null;
  const conflictsPerS = w
    ? rate(w[0].fleet.selector.reservation_conflicts, sel.reservation_conflicts, w[1].at - w[0].at)
    : null;
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
        w ? fmt(jobsPerSecond(w), 2) : '–',
        'jobs',
        `placements per second over the last ${WINDOW_MS / 1000} s, this selector`,
      ),
      stat(
        'choice p99 (ms)',
        fmt(choiceP99, 3),
        'choice-p99',
        'in-memory selection, this selector, windowed',
      ),
      stat('POST p99 (ms)', fmt(postP99, 1), 'post-p99', 'POST /v1/jobs inside the selector, windowed'),
      stat(
        'staleness p50/p99 (ms)',
        `${fmt(f.snapshot.staleness_ms.p50, 0)} / ${fmt(f.snapshot.staleness_ms.p99, 0)}`,
        'staleness',
        'heartbeat received → visible in this selector',
      ),
      stat(
        'oldest shard (ms)',
        fmt(oldestShard, 0),
        'shard-age',
        'age of the oldest shard version in this replica',
      ),
      stat(
        'reservation conflicts',
        `${sel.reservation_conflicts}${conflictsPerS ? ` (${fmt(conflictsPerS, 2)}/s)` : ''}`,
        'conflicts',
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
