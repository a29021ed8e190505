/**
 * The eligible nodes of the current selection, in visit order: scratch arrays owned by one
 * SnapshotIndex and reused across its selections (selection is synchronous), so that no
 * per-node allocation is made. Entry i is the i-th eligible node: its slot and, when ranking
 * by routing key, its rendezvous score. A node's load ((running + reserved) / max) and GPU%
 * (unreported = 0) are the index's per-slot `load` and `gpu0`, computed once per upsert, except
 * where this selector's known load overrides them (`overrides` by slot, their slots set in
 * `overridden`). Written by node-filters.ts, read by ranking.ts.
 */
import type { Bits } from './bitset.ts';

export class Eligible {
  n = 0;
  slots = new Int32Array(1024);
  score = new Float64Array(1024);
  /** Load by slot where known load changed it (null: nowhere); `overridden` = those slots. */
  overrides: Map<number, number> | null = null;
  overridden: Bits = new Uint32Array(0);

  /** Room for `n` entries (slots kept). */
  reserve(n: number): void {
    if (n <= this.slots.length) return;
    const size = Math.max(n, this.slots.length * 2);
    const slots = new Int32Array(size);
    slots.set(this.slots);
    this.slots = slots;
    this.score = new Float64Array(size);
  }
}
