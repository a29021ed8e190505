/**
 * The eligible nodes of the current selection: scratch owned by one SnapshotIndex and reused
 * across its selections (selection is synchronous), so that no per-node allocation is made.
 * When the visit is in slot order (one index set, or every node: the common case) they are
 * `bits` (the selection's remaining set) and never listed; otherwise (a union of sets visited
 * set by set) they are listed in visit order in `slots`, entry i being the i-th eligible node.
 * A node's load ((running + reserved) / max) and GPU% (unreported = 0) are the index's
 * per-slot `load` and `gpu0`, computed once per upsert, except where this selector's known
 * load overrides them (`overrides` by slot, their slots set in `overridden`). Written by
 * node-filters.ts, read by ranking.ts and least-loaded.ts.
 */
import { popcount32, type Bits } from './bitset.ts';

export class Eligible {
  n = 0;
  /** the eligible nodes in slot order, or null: listed in `slots` */
  bits: Bits | null = null;
  /** words of `bits` in use */
  words = 0;
  slots = new Int32Array(1024);
  /** Load by slot where known load changed it (null: nowhere); `overridden` = those slots. */
  overrides: Map<number, number> | null = null;
  overridden: Bits = new Uint32Array(0);

  /** Room for `n` listed entries (slots kept). */
  reserve(n: number): void {
    if (n <= this.slots.length) return;
    const size = Math.max(n, this.slots.length * 2);
    const slots = new Int32Array(size);
    slots.set(this.slots);
    this.slots = slots;
  }

  /** The slot of the i-th eligible node in visit order (0 ≤ i < n). */
  slotAt(i: number): number {
    const bits = this.bits;
    if (bits === null) return this.slots[i]!;
    let left = i;
    for (let w = 0; w < this.words; w++) {
      let b = bits[w]!;
      if (b === 0) continue;
      const c = popcount32(b);
      if (left >= c) {
        left -= c;
        continue;
      }
      for (; left > 0; left--) b &= b - 1;
      return (w << 5) | (31 - Math.clz32(b & -b));
    }
    throw new Error(`no eligible node ${i} of ${this.n}`);
  }
}
