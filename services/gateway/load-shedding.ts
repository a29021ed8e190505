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

interface Waiter {
  resolve(admitted: boolean): void;
  timer: NodeJS.Timeout;
}

/**
 * Process-wide bound on Redis work in flight; beyond it requests are shed (429), not queued —
 * but for a node socket's registration, which may wait up to a deadline
 * (`acquireRegistration`): its socket is open already, and shedding it costs the node a
 * reconnect delay (5 s for lingua) and the gateway the whole handshake again. Registrations
 * hold at most a quarter of the slots, so that in a storm the registered nodes' heartbeats
 * (among them each new node's first, which makes it ready) still find room; waiters are
 * admitted in arrival order as slots free.
 */
export class InflightLimiter {
  private inflight = 0;
  private registrations = 0;
  readonly maxRegistrations: number;
  /** In arrival order (a Set keeps insertion order; a timed-out waiter leaves in O(1)). */
  private readonly waiters = new Set<Waiter>();

  constructor(readonly max: number) {
    this.maxRegistrations = Math.max(1, Math.floor(max / 4));
  }

  tryAcquire(): boolean {
    if (this.inflight >= this.max) return false;
    this.inflight++;
    return true;
  }

  release(): void {
    this.inflight--;
    this.admitWaiters();
  }

  /**
   * A slot for a registration: now, or the first one its share allows within `waitMs`; false
   * past that (shed it). Give it back with releaseRegistration.
   */
  acquireRegistration(waitMs: number): Promise<boolean> {
    if (this.waiters.size === 0 && this.registrationFits()) {
      this.take();
      return Promise.resolve(true);
    }
    if (waitMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          resolve(false);
        }, waitMs),
      };
      this.waiters.add(waiter);
    });
  }

  releaseRegistration(): void {
    this.registrations--;
    this.release();
  }

  private registrationFits(): boolean {
    return this.inflight < this.max && this.registrations < this.maxRegistrations;
  }

  private take(): void {
    this.inflight++;
    this.registrations++;
  }

  private admitWaiters(): void {
    while (this.waiters.size > 0 && this.registrationFits()) {
      const waiter = this.waiters.values().next().value!;
      this.waiters.delete(waiter);
      clearTimeout(waiter.timer);
      this.take();
      waiter.resolve(true);
    }
  }

  /** Registrations waiting for a slot. */
  get waiting(): number {
    return this.waiters.size;
  }

  get current(): number {
    return this.inflight;
  }
}
