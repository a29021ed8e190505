/**
 * Percentiles over the last N seconds from Prometheus histograms, the way `histogram_quantile`
 * over `rate(…[N s])` computes them: the difference of two scrapes of the cumulative buckets
 * (so nothing older than the window counts), then linear interpolation inside the bucket the rank
 * falls in (not the bucket's upper bound). For `npm start`'s live summary (live-summary.ts).
 */

/** Cumulative bucket counts by upper bound (`le`), `Infinity` for `+Inf`. */
export type Buckets = Map<number, number>;

/**
 * The buckets of histogram `name` in text-format samples (`<name>_bucket{…le="0.5"…} 12`), summed
 * over every series and every sample set (e.g. every gateway).
 */
export function histogramBuckets(samples: Iterable<Map<string, number>>, name: string): Buckets {
  const buckets: Buckets = new Map();
  const prefix = `${name}_bucket{`;
  for (const set of samples)
    for (const [series, value] of set) {
      if (!series.startsWith(prefix)) continue;
      const le = /[{,]le="([^"]+)"/.exec(series)?.[1];
      if (le === undefined || !Number.isFinite(value)) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      if (Number.isNaN(bound)) continue;
      buckets.set(bound, (buckets.get(bound) ?? 0) + value);
    }
  return buckets;
}

/**
 * What was observed between two scrapes: `now − before` per bucket. A bucket that went down means
 * a process restarted (its counters began again): then `now` alone is what is known.
 */
export function bucketDelta(now: Buckets, before: Buckets | undefined): Buckets {
  if (!before) return new Map(now);
  const delta: Buckets = new Map();
  for (const [le, count] of now) {
    const d = count - (before.get(le) ?? 0);
    if (d < 0) return new Map(now);
    delta.set(le, d);
  }
  return delta;
}

/**
 * The q-quantile (0 < q ≤ 1) of cumulative buckets, interpolated linearly within the bucket that
 * holds rank q × total, as Prometheus's histogram_quantile does: the first bucket's lower bound is
 * 0 (when its upper bound is positive); a rank in the +Inf bucket gives the highest finite bound.
 * null when nothing was observed.
 */
export function histogramQuantile(q: number, buckets: Buckets): number | null {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  // cumulative counts never decrease; tolerate a scrape that caught buckets mid-update
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]![1] < sorted[i - 1]![1]) sorted[i] = [sorted[i]![0], sorted[i - 1]![1]];
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0 || !(q > 0 && q <= 1)) return null;
  const rank = q * total;
  const i = sorted.findIndex(([, count]) => count >= rank);
  const [upper, count] = sorted[i]!;
  if (upper === Infinity) return highestFinite(sorted);
  const [lower, below] = i === 0 ? [upper > 0 ? 0 : upper, 0] : sorted[i - 1]!;
  if (count === below) return upper;
  return lower + (upper - lower) * ((rank - below) / (count - below));
}

function highestFinite(sorted: [number, number][]): number | null {
  const finite = sorted.filter(([le]) => Number.isFinite(le));
  return finite.at(-1)?.[0] ?? null;
}

/** Observations counted in buckets (the +Inf bucket's count). */
export function bucketTotal(buckets: Buckets): number {
  let max = 0;
  for (const count of buckets.values()) max = Math.max(max, count);
  return max;
}

/**
 * Scrapes of cumulative figures kept for the last `windowMs`: `since(now)` gives what the oldest
 * scrape still inside the window differs by, i.e. what happened over (about) the last N seconds.
 */
export class SlidingWindow<T> {
  private readonly entries: { at: number; value: T }[] = [];

  constructor(readonly windowMs: number) {}

  /** Records a scrape taken at `at` (ms); drops what the window no longer needs. */
  push(at: number, value: T): void {
    this.entries.push({ at, value });
    // keep the newest entry at or before the window's start: the baseline of the difference
    while (this.entries.length > 2 && this.entries[1]!.at <= at - this.windowMs) this.entries.shift();
  }

  /** The oldest scrape of the window (the baseline) and the time it was taken, if there are two. */
  baseline(): { at: number; value: T } | undefined {
    return this.entries.length >= 2 ? this.entries[0] : undefined;
  }

  latest(): { at: number; value: T } | undefined {
    return this.entries.at(-1);
  }
}
