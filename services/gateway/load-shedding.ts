/**
 * Token bucket: `rate` tokens/s, at most `burst` stored. Time in ms from a monotonic clock.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number = performance.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now: number = performance.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Process-wide bound on Redis work in flight; beyond it requests are shed (429), not queued. */
export class InflightLimiter {
  private inflight = 0;

  constructor(readonly max: number) {}

  tryAcquire(): boolean {
    if (this.inflight >= this.max) return false;
    this.inflight++;
    return true;
  }

  release(): void {
    this.inflight--;
  }

  get current(): number {
    return this.inflight;
  }
}
