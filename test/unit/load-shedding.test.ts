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

  it('in-flight limiter: a registration waits for a freed slot, in arrival order, up to its deadline', async () => {
    const limiter = new InflightLimiter(1);
    expect(limiter.tryAcquire()).toBe(true);
    const order: string[] = [];
    const first = limiter.acquireWithin(5_000).then((ok) => order.push(`first ${ok}`));
    const second = limiter.acquireWithin(5_000).then((ok) => order.push(`second ${ok}`));
    const late = limiter.acquireWithin(30); // nobody frees a slot in 30 ms: shed
    expect(await limiter.acquireWithin(0)).toBe(false); // no wait: shed at once
    expect(limiter.waiting).toBe(3);
    expect(await late).toBe(false);
    expect(limiter.waiting).toBe(2);
    // a frame that tries without waiting does not jump the queue
    expect(limiter.tryAcquire()).toBe(false);
    limiter.release(); // handed to the first waiter: still one in flight
    await first;
    expect([order, limiter.current, limiter.waiting]).toEqual([['first true'], 1, 1]);
    limiter.release();
    await second;
    expect(order).toEqual(['first true', 'second true']);
    limiter.release();
    expect([limiter.current, limiter.waiting]).toEqual([0, 0]);
  });
});
