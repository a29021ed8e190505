import { describe, expect, it } from 'vitest';
import type { Histogram } from '../../console/src/api.ts';
import { fleetWindow, rate, windowOf, windowQuantileMs } from '../../console/src/stats.ts';

/** The console's windowed figures (console/src/stats.ts): differences of cumulative readings. */
const hist = (counts: number[]): Histogram => {
  const bounds = [0.001, 0.005, 0.01, null];
  let sum = 0;
  return {
    count: counts.reduce((a, b) => a + b, 0),
    buckets: counts.map((c, i) => [bounds[i]!, (sum += c)]),
  };
};

describe('console windowed figures', () => {
  it('a percentile of what happened between two readings, interpolated inside its bucket', () => {
    const before = hist([100, 0, 0, 0]);
    // 100 new observations: 50 in (1, 5] ms, 50 in (5, 10] ms
    const after = hist([100, 50, 50, 0]);
    expect(windowQuantileMs(before, after, 0.5)).toBeCloseTo(5, 6);
    expect(windowQuantileMs(before, after, 0.99)).toBeCloseTo(5 + 5 * (49 / 50), 6);
    expect(windowQuantileMs(before, after, 0.25)).toBeCloseTo(1 + 4 * 0.5, 6);
    // the old 100 observations under 1 ms do not count
    expect(windowQuantileMs(hist([0, 0, 0, 0]), after, 0.25)).toBeCloseTo(0.5, 6);
  });

  it('nothing observed: null; beyond the last finite bound: that bound', () => {
    expect(windowQuantileMs(hist([3, 0, 0, 0]), hist([3, 0, 0, 0]), 0.99)).toBeNull();
    expect(windowQuantileMs(hist([0, 0, 0, 0]), hist([0, 0, 0, 10]), 0.5)).toBe(10);
  });

  it('rates per second, never negative; the window is the newest sample and one at least that old', () => {
    expect(rate(10, 40, 2000)).toBe(15);
    expect(rate(40, 10, 2000)).toBe(0);
    const s = (at: number) => ({ at, fleet: {} as never });
    expect(windowOf([s(0)], 1000)).toBeNull();
    const w = windowOf([s(0), s(1000), s(2000), s(3000)], 1500)!;
    expect([w[0].at, w[1].at]).toEqual([1000, 3000]);
    expect(windowOf([s(0), s(1000)], 5000)!.map((x) => x.at)).toEqual([0, 1000]);
  });

  it('fleet-wide: each selector’s own difference, rates summed, histograms merged; one seen at one end only does not count', () => {
    const sel = (id: string, at: number, placed: number, conflicts: number, choice: number[]) => ({
      id,
      at,
      jobs: { placed },
      reservation_conflicts: conflicts,
      selection_seconds: hist(choice),
      request_seconds: hist(choice),
    });
    const sample = (at: number, selectors: ReturnType<typeof sel>[]) => ({
      at,
      fleet: { selectors } as never,
    });
    const w = fleetWindow([
      sample(0, [
        sel('a', 0, 100, 1, [10, 0, 0, 0]),
        sel('b', 500, 50, 0, [0, 0, 0, 0]),
        sel('gone', 0, 9, 9, [9, 9, 9, 9]),
      ]),
      sample(10_000, [
        sel('a', 10_000, 200, 3, [10, 0, 0, 0]), // 100 jobs in 10 s, none observed by its histogram
        sel('b', 10_500, 150, 0, [0, 0, 98, 2]), // 100 jobs in 10 s: 98 in (5, 10] ms, 2 beyond
        sel('new', 10_000, 1000, 50, [500, 0, 0, 0]), // appeared in the window: its totals are not a rate
      ]),
    ]);
    expect(w.selectors).toBe(2);
    expect(w.jobsPerS).toBeCloseTo(20, 9);
    expect(w.conflictsPerS).toBeCloseTo(0.2, 9);
    expect(w.choiceP99Ms).toBe(10); // the 99th of 100 is beyond the last finite bound
    expect(w.postP99Ms).toBe(10);
    expect(fleetWindow([sample(0, []), sample(1000, [])])).toMatchObject({
      selectors: 0,
      jobsPerS: 0,
      choiceP99Ms: null,
    });
  });
});
