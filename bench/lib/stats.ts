/** Percentiles: from raw samples, and from (deltas of) Prometheus-style cumulative histograms. */

/** One cumulative bucket: `count` observations were ≤ `le` (`le` = Infinity for `+Inf`). */
export interface Bucket {
  le: number;
  count: number;
}

export interface HistogramData {
  buckets: Bucket[];
  sum: number;
  count: number;
}

/** A histogram that went through JSON (IPC): `+Inf` bounds arrive as null. */
export function reviveHistogram(h: HistogramData): HistogramData {
  return {
    ...h,
    buckets: h.buckets.map((b) => ({ le: typeof b.le === 'number' ? b.le : Infinity, count: b.count })),
  };
}

/** `b − a`, bucket by bucket (both from the same histogram, `a` scraped first). */
export function histogramDelta(a: HistogramData, b: HistogramData): HistogramData {
  const before = new Map(a.buckets.map((x) => [x.le, x.count]));
  return {
    buckets: b.buckets.map((x) => ({ le: x.le, count: x.count - (before.get(x.le) ?? 0) })),
    sum: b.sum - a.sum,
    count: b.count - a.count,
  };
}

/**
 * The q-quantile (0..1) of a cumulative histogram, interpolating linearly inside the bucket
 * the rank falls into (as PromQL's histogram_quantile does; the first bucket's lower bound is 0).
 * A rank in the `+Inf` bucket returns the highest finite bound with `overflow` set: the true
 * value is above it. Null when the histogram is empty.
 */
export function histogramQuantile(h: HistogramData, q: number): { value: number; overflow: boolean } | null {
  const buckets = [...h.buckets].sort((x, y) => x.le - y.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank && b.count > prevCount) {
      if (b.le === Infinity) return { value: prevLe, overflow: true };
      return {
        value: prevLe + ((b.le - prevLe) * (rank - prevCount)) / (b.count - prevCount),
        overflow: false,
      };
    }
    if (b.le !== Infinity) prevLe = b.le;
    prevCount = b.count;
  }
  return { value: prevLe, overflow: true };
}

/** The q-quantile of ascending-sorted samples (nearest rank). */
export function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index]!;
}

export interface SampleSummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(samples: ArrayLike<number>): SampleSummary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    mean: sorted.length ? sum / sorted.length : NaN,
    p50: sortedQuantile(sorted, 0.5),
    p90: sortedQuantile(sorted, 0.9),
    p99: sortedQuantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
  };
}

/**
 * A fixed-bucket histogram for hot loops (no per-sample allocation), mergeable and
 * diffable like a Prometheus one. Bounds are upper bounds, ascending; `+Inf` is implicit.
 */
export class FixedHistogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number, times = 1): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]! += times;
    this.sum += value * times;
    this.count += times;
  }

  /** Cumulative form, for histogramDelta / histogramQuantile. */
  toData(): HistogramData {
    let running = 0;
    const buckets = this.counts.map((c, i) => {
      running += c;
      return { le: this.bounds[i] ?? Infinity, count: running };
    });
    return { buckets, sum: this.sum, count: this.count };
  }
}
