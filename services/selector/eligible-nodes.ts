/**
 * The eligible nodes of the current selection, in visit order: scratch arrays owned by one
 * SnapshotIndex and reused across its selections (selection is synchronous), so that no
 * per-node allocation is made. Entry n is the n-th eligible node: its slot, its load
 * ((running + reserved) / max, known load counted), its GPU% (unreported = 0) and, when
 * ranking by routing key, its rendezvous score. Written by node-filters.ts, read by ranking.ts.
 */
export class Eligible {
  n = 0;
  slots = new Int32Array(1024);
  load = new Float64Array(1024);
  gpu = new Float64Array(1024);
  score = new Float64Array(1024);

  /** Appends one node (growing the arrays when full); returns its position. */
  push(slot: number, load: number, gpu: number): number {
    const n = this.n++;
    if (n >= this.slots.length) this.grow(n);
    this.slots[n] = slot;
    this.load[n] = load;
    this.gpu[n] = gpu;
    return n;
  }

  private grow(n: number): void {
    const size = Math.max(n + 1, this.slots.length * 2);
    const slots = new Int32Array(size);
    slots.set(this.slots);
    const load = new Float64Array(size);
    load.set(this.load);
    const gpu = new Float64Array(size);
    gpu.set(this.gpu);
    this.slots = slots;
    this.load = load;
    this.gpu = gpu;
    this.score = new Float64Array(size);
  }
}
