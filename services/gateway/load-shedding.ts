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

/**
 * One socket's frames: a token bucket of `rate`/s (bursts up to 4x), and a leaky count of the
 * frames it shed; past `4 x rate` of those the peer is flooding.
 */
export class FrameRate {
  private readonly bucket: TokenBucket;
  private flood = 0;
  private floodAt = performance.now();

  constructor(private readonly rate: number) {
    this.bucket = new TokenBucket(rate, rate * 4);
  }

  take(now: number): boolean {
    return this.bucket.take(now);
  }

  /** Counts a shed frame: true when the peer is flooding. */
  flooding(now: number): boolean {
    this.flood = Math.max(0, this.flood - ((now - this.floodAt) * this.rate) / 1000) + 1;
    this.floodAt = now;
    return this.flood > this.rate * 4;
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
