import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import {
  bucketDelta,
  bucketTotal,
  histogramBuckets,
  histogramQuantile,
  SlidingWindow,
  type Buckets,
} from '../../scripts/lib/histogram-window.ts';
import { parseSamples } from '../../scripts/lib/live-summary.ts';

/** `npm start`'s windowed, interpolated percentiles (scripts/lib/histogram-window.ts). */

const buckets = (entries: [number, number][]): Buckets => new Map(entries);

/** A real prom-client histogram, scraped as the live summary scrapes a service. */
function histogram(bounds: number[]) {
  const registry = new Registry();
  const h = new Histogram({ name: 'sb_test_seconds', help: 'test', buckets: bounds, registers: [registry] });
  return {
    observe: (v: number) => h.observe(v),
    scrape: async () => histogramBuckets([parseSamples(await registry.metrics())], 'sb_test_seconds'),
  };
}

describe('histogramQuantile', () => {
  it('interpolates linearly inside the bucket the rank falls in (Prometheus histogram_quantile)', () => {
    const b = buckets([
      [0.1, 10],
      [0.2, 20],
      [0.5, 30],
      [Infinity, 30],
    ]);
    expect(histogramQuantile(0.5, b)).toBeCloseTo(0.15, 12); // rank 15: half way through (0.1, 0.2]
    expect(histogramQuantile(0.1, b)).toBeCloseTo(0.03, 12); // first bucket: from 0
    expect(histogramQuantile(0.99, b)).toBeCloseTo(0.2 + 0.3 * (9.7 / 10), 12);
    expect(histogramQuantile(1, b)).toBeCloseTo(0.5, 12);
  });

  it('a rank in the +Inf bucket gives the highest finite bound; nothing observed gives null', () => {
    expect(
      histogramQuantile(
        0.9,
        buckets([
          [0.1, 5],
          [Infinity, 10],
        ]),
      ),
    ).toBe(0.1);
    expect(
      histogramQuantile(
        0.5,
        buckets([
          [0.1, 0],
          [Infinity, 0],
        ]),
      ),
    ).toBeNull();
    expect(histogramQuantile(0.5, new Map())).toBeNull();
    expect(
      histogramQuantile(
        0,
        buckets([
          [0.1, 5],
          [Infinity, 5],
        ]),
      ),
    ).toBeNull();
  });

  it('empty buckets below the rank are skipped; a bucket with no new count gives its bound', () => {
    const b = buckets([
      [1, 0],
      [2, 0],
      [4, 8],
      [Infinity, 8],
    ]);
    expect(histogramQuantile(0.5, b)).toBeCloseTo(3, 12); // all 8 in (2, 4]: rank 4 is its middle
  });

  it('on a real histogram of uniform observations, close to the true percentiles (upper bounds are not)', async () => {
    const h = histogram([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (let i = 0; i < 1000; i++) h.observe(i / 100 + 0.005); // 0.005 … 9.995, uniform
    const b = await h.scrape();
    expect(bucketTotal(b)).toBe(1000);
    expect(histogramQuantile(0.5, b)).toBeCloseTo(5, 6);
    expect(histogramQuantile(0.99, b)).toBeCloseTo(9.9, 6);
    expect(histogramQuantile(0.25, b)).toBeCloseTo(2.5, 6);
    // the old summary's answer for p99 was the bucket's upper bound: 10
  });
});

describe('windows: the difference of two scrapes', () => {
  it('counts only what was observed after the baseline', async () => {
    const h = histogram([0.001, 0.01, 0.1, 1, 10]);
    for (let i = 0; i < 1000; i++) h.observe(5); // slow, before the window
    const before = await h.scrape();
    for (let i = 0; i < 100; i++) h.observe(0.0005); // fast, inside it
    const now = await h.scrape();
    expect(histogramQuantile(0.99, now)).toBeGreaterThan(1); // since start: the old observations dominate
    const delta = bucketDelta(now, before);
    expect(bucketTotal(delta)).toBe(100);
    expect(histogramQuantile(0.99, delta)).toBeCloseTo(0.00099, 9);
  });

  it('a restarted process (a bucket went down) counts from zero again', () => {
    const before = buckets([
      [1, 50],
      [Infinity, 60],
    ]);
    const now = buckets([
      [1, 3],
      [Infinity, 4],
    ]);
    expect(bucketDelta(now, before)).toEqual(now);
    expect(bucketDelta(now, undefined)).toEqual(now);
  });

  it('sums the series of several processes and ignores other histograms', () => {
    const a = parseSamples(
      'sb_x_bucket{le="1",service="gateway"} 2\nsb_x_bucket{le="+Inf",service="gateway"} 3\n',
    );
    const b = parseSamples(
      'sb_x_bucket{le="1",service="gateway"} 5\nsb_x_bucket{le="+Inf",service="gateway"} 5\nsb_xy_bucket{le="1"} 9\n',
    );
    expect(histogramBuckets([a, b], 'sb_x')).toEqual(
      buckets([
        [1, 7],
        [Infinity, 8],
      ]),
    );
  });

  it('SlidingWindow keeps as baseline the newest scrape at or before the window start', () => {
    const w = new SlidingWindow<number>(10_000);
    expect(w.baseline()).toBeUndefined();
    w.push(0, 0);
    expect(w.baseline()).toBeUndefined(); // one scrape: no difference yet
    w.push(2000, 1);
    expect(w.baseline()).toEqual({ at: 0, value: 0 });
    for (let t = 4000; t <= 40_000; t += 2000) w.push(t, t / 2000);
    expect(w.baseline()).toEqual({ at: 30_000, value: 15 });
    expect(w.latest()).toEqual({ at: 40_000, value: 20 });
  });
});
