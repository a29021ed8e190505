import { SwitchboardError } from '../../shared/errors.ts';

/**
 * Sign-in attempts per client address (POST /console/login): a token bucket of `perMinute`
 * attempts (bursts of as many), refilled evenly over a minute, in this selector process. The
 * table is bounded: at most `maxAddresses` addresses are tracked, least recently seen first
 * out (a Map in use order: O(1) per attempt). `perMinute` 0 turns it off.
 */
export class LoginLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one attempt for `address`, or throws 429 RATE_LIMITED with the seconds to wait. */
  take(address: string): void {
    if (this.perMinute === 0) return;
    const now = this.now();
    const perMs = this.perMinute / 60_000;
    let bucket = this.buckets.get(address);
    if (bucket) {
      bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * perMs);
      bucket.at = now;
      this.buckets.delete(address); // to the end: the most recently seen
    } else {
      if (this.buckets.size >= this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: this.perMinute, at: now };
    }
    this.buckets.set(address, bucket);
    if (bucket.tokens < 1) {
      const retryAfterS = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
      throw new SwitchboardError(
        'RATE_LIMITED',
        `too many sign-in attempts from this address: at most ${this.perMinute} a minute (SB_CONSOLE_LOGIN_RATE); retry in ${retryAfterS} s`,
        { retryAfterS },
      );
    }
    bucket.tokens -= 1;
  }

  /** Addresses tracked now (for tests). */
  get size(): number {
    return this.buckets.size;
  }
}
