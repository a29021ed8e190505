import { describe, expect, it } from 'vitest';
import type { SwitchboardError } from '../../shared/errors.ts';
import { LoginLimiter } from '../../services/selector/login-limiter.ts';

describe('LoginLimiter (console sign-in attempts per address)', () => {
  const refused = (limiter: LoginLimiter, address: string): SwitchboardError | null => {
    try {
      limiter.take(address);
      return null;
    } catch (err) {
      return err as SwitchboardError;
    }
  };

  it('allows the rate as a burst, then refuses with the seconds until the next attempt', () => {
    let now = 0;
    const limiter = new LoginLimiter(6, 100, () => now);
    for (let i = 0; i < 6; i++) expect(refused(limiter, '10.0.0.1')).toBeNull();
    const err = refused(limiter, '10.0.0.1');
    expect(err?.code).toBe('RATE_LIMITED');
    expect(err?.status).toBe(429);
    expect(err?.retryAfterS).toBe(10); // 6 a minute: one every 10 s
    expect(refused(limiter, '10.0.0.2')).toBeNull(); // per address
    now += 10_000;
    expect(refused(limiter, '10.0.0.1')).toBeNull();
    expect(refused(limiter, '10.0.0.1')?.retryAfterS).toBe(10);
    now += 4_000;
    expect(refused(limiter, '10.0.0.1')?.retryAfterS).toBe(6);
  });

  it('tracks at most maxAddresses, forgetting the least recently seen', () => {
    const limiter = new LoginLimiter(1, 3, () => 0);
    for (const a of ['a', 'b', 'c']) limiter.take(a);
    expect(refused(limiter, 'a')).not.toBeNull(); // a: seen again, now the most recent
    limiter.take('d'); // b, the least recently seen, is forgotten
    expect(limiter.size).toBe(3);
    expect(refused(limiter, 'b')).toBeNull(); // a fresh bucket
    expect(refused(limiter, 'c')).toBeNull(); // c went when b came back: order was c, a, d
    expect(refused(limiter, 'd')).not.toBeNull(); // d is still tracked, its bucket empty
  });

  it('0 turns it off', () => {
    const limiter = new LoginLimiter(0, 1, () => 0);
    for (let i = 0; i < 100; i++) limiter.take(`x${i % 7}`);
    expect(limiter.size).toBe(0);
  });
});
