import { describe, expect, it } from 'vitest';
import { InflightLimiter, TokenBucket } from '../../services/gateway/load-shedding.ts';

describe('load shedding', () => {
  it('token bucket: allows the burst, then the sustained rate', () => {
    const bucket = new TokenBucket(10, 40, 0);
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (bucket.take(0)) allowed++;
    expect(allowed).toBe(40);
    expect(bucket.take(50)).toBe(false); // 0.5 token after 50 ms at 10/s
    expect(bucket.take(100)).toBe(true); // 1 token after 100 ms
    expect(bucket.take(100)).toBe(false);
    let later = 0;
    for (let i = 0; i < 100; i++) if (bucket.take(100_000)) later++;
    expect(later).toBe(40); // refills to the burst, never beyond
  });

  it('in-flight limiter: sheds beyond the bound until released', () => {
    const limiter = new InflightLimiter(2);
    expect([limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire()]).toEqual([true, true, false]);
    limiter.release();
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.current).toBe(2);
  });
});
