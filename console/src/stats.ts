import type { Fleet, Histogram } from './api.ts';

/**
 * Rates and percentiles over a window of the fleet samples the console polled: the selector
 * sends cumulative counters and histogram buckets; the differences between two samples are what
 * happened between them.
 */

export interface Sample {
  at: number;
  fleet: Fleet;
}

/** The newest sample and the newest one at least `windowMs` older (else the oldest). */
export function windowOf(samples: readonly Sample[], windowMs: number): [Sample, Sample] | null {
  if (samples.length < 2) return null;
  const last = samples[samples.length - 1]!;
  let first = samples[0]!;
  for (const s of samples) if (last.at - s.at >= windowMs) first = s;
  return first === last ? null : [first, last];
}

/** Per second between two cumulative readings (a reset, e.g. another replica answering, reads 0). */
export function rate(before: number, after: number, ms: number): number {
  return ms > 0 ? Math.max(0, after - before) / (ms / 1000) : 0;
}

/**
 * The q-quantile, in ms, of what a histogram observed between two readings, interpolated
 * linearly inside its bucket; null when nothing was observed. Beyond the last finite bound it
 * answers that bound (the histogram cannot say more).
 */
export function windowQuantileMs(before: Histogram, after: Histogram, q: number): number | null {
  const prev = new Map(before.buckets.map(([le, c]) => [le, c]));
  const deltas = after.buckets.map(([le, c]): [number | null, number] => [
    le,
    Math.max(0, c - (prev.get(le) ?? 0)),
  ]);
  const total = deltas.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const target = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of deltas) {
    if (cumulative >= target) {
      if (le === null) return lower * 1000;
      const inBucket = cumulative - below;
      const share = inBucket > 0 ? (target - below) / inBucket : 1;
      return (lower + (le - lower) * share) * 1000;
    }
    if (le !== null) lower = le;
    below = cumulative;
  }
  return lower * 1000;
}

/** What the fleet's selectors did over a window: every selector seen at both ends, summed. */
export interface FleetWindow {
  /** selectors counted (present at both ends of the window) */
  selectors: number;
  jobsPerS: number;
  conflictsPerS: number;
  choiceP99Ms: number | null;
  postP99Ms: number | null;
}

/**
 * Fleet-wide rates and p99s over a window: per selector (`fleet.selectors`, each with its own
 * clock `at`), the difference between its two readings; rates summed, histogram differences
 * merged bucket by bucket before the quantile. A selector seen at one end only does not count
 * (its counters started or stopped in between).
 */
export function fleetWindow(w: [Sample, Sample]): FleetWindow {
  const [a, b] = w;
  const before = new Map((a.fleet.selectors ?? []).map((s) => [s.id, s]));
  let selectors = 0;
  let jobsPerS = 0;
  let conflictsPerS = 0;
  const choice = new Map<number | null, number>();
  const post = new Map<number | null, number>();
  const merge = (into: Map<number | null, number>, from: Histogram, to: Histogram) => {
    const prev = new Map(from.buckets.map(([le, c]) => [le, c]));
    for (const [le, c] of to.buckets)
      into.set(le, (into.get(le) ?? 0) + Math.max(0, c - (prev.get(le) ?? 0)));
  };
  for (const s of b.fleet.selectors ?? []) {
    const p = before.get(s.id);
    if (!p || s.at <= p.at) continue;
    selectors++;
    const ms = s.at - p.at;
    jobsPerS += rate(p.jobs['placed'] ?? 0, s.jobs['placed'] ?? 0, ms);
    conflictsPerS += rate(p.reservation_conflicts, s.reservation_conflicts, ms);
    merge(choice, p.selection_seconds, s.selection_seconds);
    merge(post, p.request_seconds, s.request_seconds);
  }
  const quantile = (deltas: Map<number | null, number>) => {
    const zero: Histogram = { count: 0, buckets: [...deltas.keys()].map((le) => [le, 0]) };
    const merged: Histogram = { count: 0, buckets: [...deltas.entries()] };
    return windowQuantileMs(zero, merged, 0.99);
  };
  return { selectors, jobsPerS, conflictsPerS, choiceP99Ms: quantile(choice), postP99Ms: quantile(post) };
}
