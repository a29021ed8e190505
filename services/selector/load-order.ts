/**
 * The SnapshotIndex's slots in ranking order — (load, GPU%, slot) ascending, as least-loaded
 * ranking compares them (ranking.ts) — so that a selection with thousands of eligible nodes
 * finds the least loaded ones by walking from the front (least-loaded.ts) instead of
 * comparing every eligible node.
 *
 * A slot's load and GPU% never change while it is in use (every upsert takes a new slot,
 * snapshot-index.ts), so the order is kept lazily: `sorted` holds the slots below `tailFrom`
 * in order, possibly with slots freed since (skipped by readers: a freed slot is in no
 * selection's bit set); the slots from `tailFrom` on (upserted since) are the TAIL, which
 * readers scan by bit set. When the tail grows past an eighth of the nodes (at least
 * MIN_TAIL), it is sorted and merged in: O(nodes) once per nodes/8 upserts. A load that is
 * not a number (max 0) sorts last: such a node is always full, never eligible.
 */

const MIN_TAIL = 1024;

export class LoadOrder {
  /** slots below tailFrom in (load, gpu, slot) order, freed ones included; length n */
  sorted = new Int32Array(0);
  n = 0;
  tailFrom = 0;

  /** Merge due once `next` slots are allocated and `size` nodes are in use? */
  due(next: number, size: number): boolean {
    return next - this.tailFrom > Math.max(MIN_TAIL, size >>> 3);
  }

  /**
   * Sorts the tail (slots tailFrom..next-1 in use) and merges it in, dropping freed slots.
   * `used(s)`: is slot s in use.
   */
  merge(next: number, load: Float64Array, gpu: Float64Array, used: (s: number) => boolean): void {
    const tail: number[] = [];
    for (let s = this.tailFrom; s < next; s++) if (used(s)) tail.push(s);
    const before = (a: number, b: number): boolean => {
      const la = key(load[a]!);
      const lb = key(load[b]!);
      if (la !== lb) return la < lb;
      const ga = gpu[a]!;
      const gb = gpu[b]!;
      if (ga !== gb) return ga < gb;
      return a < b;
    };
    tail.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
    const out = new Int32Array(this.n + tail.length);
    let i = 0;
    let j = 0;
    let o = 0;
    const old = this.sorted;
    while (i < this.n || j < tail.length) {
      if (i < this.n && !used(old[i]!)) {
        i++;
        continue;
      }
      if (j >= tail.length || (i < this.n && before(old[i]!, tail[j]!))) out[o++] = old[i++]!;
      else out[o++] = tail[j++]!;
    }
    this.sorted = out;
    this.n = o;
    this.tailFrom = next;
  }

  /** After compaction: `moved[s]` = the new slot of s (−1: freed); order is kept. */
  remap(moved: Int32Array, next: number): void {
    let o = 0;
    for (let i = 0; i < this.n; i++) {
      const to = this.sorted[i]! < moved.length ? moved[this.sorted[i]!]! : -1;
      if (to >= 0) this.sorted[o++] = to;
    }
    this.n = o;
    let from = 0;
    for (let s = 0; s < this.tailFrom && s < moved.length; s++) if (moved[s]! >= 0) from++;
    this.tailFrom = Math.min(from, next);
  }
}

/** Sort key of a load: not a number sorts last. */
function key(load: number): number {
  return load === load ? load : Infinity;
}
