import { describe, expect, it } from 'vitest';
import type { Histogram } from '../../console/src/api.ts';
import { rate, windowOf, windowQuantileMs } from '../../console/src/stats.ts';

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
});
