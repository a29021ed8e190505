import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FoldedHistogram, Histogram, LATENCY_BUCKETS, Registry } from '../../shared/metrics.ts';

/** FoldedHistogram's exposition equals prom-client's Histogram fed the same values with observe. */
describe('FoldedHistogram', () => {
  it('scrapes as observe would, across scrapes, any values', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(
            fc.oneof(
              fc.double({ min: 0, max: 20, noNaN: true }),
              fc.constantFrom(...LATENCY_BUCKETS, 0, 1e9),
            ),
            { maxLength: 50 },
          ),
          { minLength: 1, maxLength: 4 },
        ),
        async (scrapes) => {
          const folded = new Registry();
          const plain = new Registry();
          const config = { name: 'h_seconds', help: 'h', buckets: LATENCY_BUCKETS };
          const f = new FoldedHistogram({ ...config, registers: [folded] });
          const h = new Histogram({ ...config, registers: [plain] });
          for (const values of scrapes) {
            for (const v of values) {
              f.record(v);
              h.observe(v);
            }
            const [a, b] = [await folded.metrics(), await plain.metrics()];
            // sums may differ in the last bits (added in another order)
            const sum = /h_seconds_sum (\S+)/;
            expect(Number(sum.exec(a)![1])).toBeCloseTo(Number(sum.exec(b)![1]), 6);
            expect(a.replace(sum, '')).toBe(b.replace(sum, ''));
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
