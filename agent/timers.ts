/**
 * Timers for agents. A standalone agent uses the platform's; a fleet of hundreds of agents in
 * one process shares ONE `TimerQueue`, so its heartbeats, backoffs and simulated jobs cost a
 * single armed Node timer instead of one per agent.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Timers {
  /** Runs `fn` once after `delayMs`. */
  after(delayMs: number, fn: () => void): TimerHandle;
}

/** The platform's setTimeout. */
export const systemTimers: Timers = {
  after(delayMs, fn) {
    const timer = setTimeout(fn, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(timer) };
  },
};

interface Entry {
  at: number;
  seq: number;
  fn: (() => void) | null;
}

/**
 * A binary min-heap of due times behind one Node timer. Cancelled entries are dropped lazily
 * when they reach the top (or compacted away when they dominate the heap).
 */
export class TimerQueue implements Timers {
  private readonly heap: Entry[] = [];
  private seq = 0;
  private cancelled = 0;
  private timer: NodeJS.Timeout | null = null;
  private armedAt = Infinity;
  private closed = false;

  constructor(private readonly now: () => number = () => performance.now()) {}

  after(delayMs: number, fn: () => void): TimerHandle {
    if (this.closed) return { cancel: () => undefined };
    const entry: Entry = { at: this.now() + Math.max(0, delayMs), seq: this.seq++, fn };
    this.push(entry);
    this.arm();
    return {
      cancel: () => {
        if (entry.fn === null) return;
        entry.fn = null;
        this.cancelled++;
        if (this.cancelled > 64 && this.cancelled > this.heap.length / 2) this.compact();
      },
    };
  }

  /** Entries still waiting (cancelled ones excluded). */
  get size(): number {
    return this.heap.length - this.cancelled;
  }

  /** Drops every pending entry and the Node timer; later `after` calls are ignored. */
  close(): void {
    this.closed = true;
    this.heap.length = 0;
    this.cancelled = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    const head = this.heap[0];
    if (!head) return;
    if (this.timer && head.at >= this.armedAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedAt = head.at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, head.at - this.now()));
  }

  private fire(): void {
    this.timer = null;
    this.armedAt = Infinity;
    const now = this.now();
    for (let head = this.heap[0]; head && head.at <= now; head = this.heap[0]) {
      this.pop();
      const fn = head.fn;
      if (fn === null) {
        this.cancelled--;
        continue;
      }
      head.fn = null;
      try {
        fn();
      } catch (err) {
        // One failing callback must not stop the others; surface it like an uncaught timer error.
        queueMicrotask(() => {
          throw err;
        });
      }
      if (this.closed) return;
    }
    this.arm();
  }

  private compact(): void {
    const live = this.heap.filter((e) => e.fn !== null);
    this.heap.length = 0;
    this.cancelled = 0;
    for (const e of live) this.push(e);
  }

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(entry: Entry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (!last || h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/** Exponential backoff with full jitter: uniform in [0, min(max, base·2^attempt)]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** `ms` spread uniformly by ±`fraction` (0.1 = ±10%). */
export function withJitter(ms: number, fraction: number, random = Math.random): number {
  return Math.max(1, Math.round(ms * (1 + fraction * (2 * random() - 1))));
}
