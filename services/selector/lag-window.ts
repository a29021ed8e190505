/** The last `size` pipeline-lag samples (ms), for p50/p99 in GET /v1/snapshot. */
export class LagWindow {
  private readonly samples: number[] = [];
  private next = 0;

  constructor(private readonly size = 2048) {}

  add(ms: number): void {
    if (this.samples.length < this.size) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.size;
  }

  quantiles(): { p50: number | null; p99: number | null } {
    if (this.samples.length === 0) return { p50: null, p99: null };
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return { p50: at(0.5), p99: at(0.99) };
  }
}
