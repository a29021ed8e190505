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

/** Placements (201) in the window, per second. */
export function jobsPerSecond(w: [Sample, Sample]): number {
  const [a, b] = w;
  return rate(a.fleet.selector.jobs['placed'] ?? 0, b.fleet.selector.jobs['placed'] ?? 0, b.at - a.at);
}
