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

  it('in-flight limiter: registrations take a quarter of the slots, wait in arrival order up to their deadline', async () => {
    const limiter = new InflightLimiter(4);
    expect(limiter.maxRegistrations).toBe(1);
    expect(await limiter.acquireRegistration(0)).toBe(true);
    expect(await limiter.acquireRegistration(0)).toBe(false); // its share is full; no wait: shed
    const order: string[] = [];
    const second = limiter.acquireRegistration(5_000).then((ok) => order.push(`second ${ok}`));
    const third = limiter.acquireRegistration(5_000).then((ok) => order.push(`third ${ok}`));
    const late = limiter.acquireRegistration(30);
    // the other frames (heartbeats) still find the other three slots
    expect([limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(limiter.waiting).toBe(3);
    expect(await late).toBe(false); // nobody freed a registration's slot within 30 ms
    expect(limiter.waiting).toBe(2);
    limiter.release(); // a heartbeat's slot: the registrations' share is still full
    expect(limiter.waiting).toBe(2);
    limiter.releaseRegistration(); // handed to the first waiter
    await second;
    expect([order, limiter.current, limiter.waiting]).toEqual([['second true'], 3, 1]);
    limiter.releaseRegistration();
    await third;
    expect(order).toEqual(['second true', 'third true']);
    limiter.releaseRegistration();
    limiter.release();
    limiter.release();
    expect([limiter.current, limiter.waiting]).toEqual([0, 0]);
  });
});
