import type { LanguageProfile } from '../../shared/language-pairs.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { clearBit, hasBit, setBit, type Bits } from './bitset.ts';
import { Eligible } from './eligible-nodes.ts';
import { LangKeys, type IndexKind } from './index-keys.ts';
import { IndexSets, type Group, type IndexSet } from './index-sets.ts';
import { LoadOrder } from './load-order.ts';
import { rendezvousNodeHash } from './rendezvous.ts';

export { ANY_LANGUAGE, type IndexKind } from './index-keys.ts';
export type { IndexSet } from './index-sets.ts';

export interface ReplicaNode {
  readonly entry: SnapshotEntry;
  readonly shard: number;
  readonly profile: LanguageProfile;
}

interface Slotted extends ReplicaNode {
  slot: number;
  /** its index keys' group (index-sets.ts) */
  group: Group;
}

const MIN_CAPACITY = 1024;

/**
 * The selector's in-memory snapshot: node entries, incremental index sets (index-sets.ts: by
 * group of nodes with the same keys, for sizes, listing and their bit sets), and dense node
 * SLOTS for selection: per-slot numbers in typed arrays and the filter predicates as bit sets
 * (bitset.ts), kept up to date per upsert/removal.
 *
 * Every upsert takes a NEW slot (the next one), so slot order is the order of the nodes' last
 * upsert — the iteration order of the Map too: a selection that visits slots in order visits
 * the nodes in the order of their last update. When the slots run out, they are compacted in
 * that order (or their number doubled when more than half are in use): O(nodes), once per
 * ~nodes upserts. The bit set of an index set is built when a selection first asks for it and
 * then maintained in place. Updated synchronously, so a selection never sees half of a delta.
 * Pure: no I/O.
 */
export class SnapshotIndex {
  private readonly nodes = new Map<string, Slotted>();
  private readonly sets = new IndexSets();
  /** nodes per shard (a bootstrap's replaceShard has none to remove) */
  private readonly shardNodes: number[] = [];
  /** within replaceShard */
  private bulk = false;
  /** Language profiles and index keys, derived once per distinct language capability digest. */
  private readonly langKeys = new LangKeys();

  private capacity = 0;
  private next = 0;
  private slots: (Slotted | undefined)[] = [];
  // Per slot (see writeSlot).
  running = new Float64Array(0);
  reserved = new Float64Array(0);
  max = new Float64Array(0);
  /** GPU% as reported, NaN when not reported */
  gpuPct = new Float64Array(0);
  /** (running + reserved) / max, as ranking compares it */
  load = new Float64Array(0);
  /** GPU% as ranking compares it: 0 when not reported */
  gpu0 = new Float64Array(0);
  /** max(cpu, gpu% when reported, mem): the resource threshold compares against it */
  peak = new Float64Array(0);
  quarantinedUntil = new Float64Array(0);
  hash = new Uint32Array(0);
  // Predicate bit sets.
  live: Bits = new Uint32Array(0);
  offline: Bits = new Uint32Array(0);
  /** registering or degraded */
  notReady: Bits = new Uint32Array(0);
  draining: Bits = new Uint32Array(0);
  /** has a quarantinedUntil (whether it has passed is checked per selection) */
  quarantined: Bits = new Uint32Array(0);
  /** members of `quarantined` (selection skips the check when none) */
  quarantinedNodes = 0;
  gpu: Bits = new Uint32Array(0);
  acceptsPublic: Bits = new Uint32Array(0);
  /** running + reserved ≥ max in the snapshot */
  full: Bits = new Uint32Array(0);
  /** nodes marked by markKnown (the placer's known load), carried to the node's next slot */
  knownMarks: Bits = new Uint32Array(0);
  private readonly marked = new Set<string>();
  /** all zero: the bits of an empty set */
  zero: Bits = new Uint32Array(0);
  private hot: Bits | null = null;
  private hotThreshold = NaN;
  private readonly scratch: Bits[] = [];
  /** The eligible nodes of the current selection (node-filters.ts, ranking.ts). */
  readonly eligible = new Eligible();
  /** The slots by (load, gpu0, slot), for least-loaded ranking (load-order.ts). */
  readonly loadOrder = new LoadOrder();

  get size(): number {
    return this.nodes.size;
  }

  /** Words of the bit sets in use (slots below `next`). */
  get words(): number {
    return (this.next + 31) >>> 5;
  }

  get(id: string): ReplicaNode | undefined {
    return this.nodes.get(id);
  }

  all(): IterableIterator<ReplicaNode> {
    return this.nodes.values();
  }

  /** The nodes with `key` in index `kind` (size, ids; empty when none). Do not mutate. */
  index(kind: IndexKind, key: string): IndexSet {
    return this.sets.get(kind, key);
  }

  /** Keys present in an index, e.g. every pool. */
  keys(kind: IndexKind): IterableIterator<string> {
    return this.sets.keys(kind);
  }

  /** The slot of a node, or -1. */
  slotOf(id: string): number {
    return this.nodes.get(id)?.slot ?? -1;
  }

  idAt(slot: number): string {
    return this.slots[slot]!.entry.id;
  }

  /** The bit set of an index set (one `index()` returned). Do not mutate. */
  bits(set: IndexSet): Bits {
    return set.size === 0 ? this.zero : this.sets.bits(set, this.capacity >>> 5);
  }

  /** Nodes whose cpu, reported gpu or mem is ≥ `threshold` (kept for the last threshold asked). */
  overThreshold(threshold: number): Bits {
    if (this.hot === null || this.hotThreshold !== threshold) {
      this.hot = new Uint32Array(this.capacity >>> 5);
      this.hotThreshold = threshold;
      for (let s = 0; s < this.next; s++)
        if (this.slots[s] && this.peak[s]! >= threshold) setBit(this.hot, s);
    }
    return this.hot;
  }

  /** Scratch bit set `i` for a selection (synchronous: reused across selections). */
  scratchBits(i: number): Bits {
    let bits = this.scratch[i];
    if (bits === undefined || bits.length !== this.capacity >>> 5)
      bits = this.scratch[i] = new Uint32Array(this.capacity >>> 5);
    return bits;
  }

  /**
   * Marks a node whose load the caller knows beyond the snapshot (SelectionPolicy
   * knownLoadMarked); the mark stays with the id across upserts and removals until unmarkKnown.
   */
  markKnown(id: string): void {
    this.marked.add(id);
    const slot = this.slotOf(id);
    if (slot >= 0) setBit(this.knownMarks, slot);
  }

  unmarkKnown(id: string): void {
    if (!this.marked.delete(id)) return;
    const slot = this.slotOf(id);
    if (slot >= 0) clearBit(this.knownMarks, slot);
  }

  upsert(entry: SnapshotEntry, shard: number): void {
    this.remove(entry.id);
    const d = this.langKeys.of(entry);
    const group = this.sets.groupOf(entry, d);
    const slot = this.allocate();
    const node: Slotted = { entry, shard, profile: d.profile, group, slot };
    this.nodes.set(entry.id, node);
    this.shardNodes[shard] = (this.shardNodes[shard] ?? 0) + 1;
    this.slots[slot] = node;
    this.sets.join(node, group);
    this.writeSlot(slot, entry);
    if (!this.bulk && this.loadOrder.due(this.next, this.nodes.size)) this.mergeLoadOrder();
  }

  remove(id: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    this.sets.leave(node, node.group);
    this.shardNodes[node.shard]!--;
    this.clearSlot(node.slot);
    this.slots[node.slot] = undefined;
    this.nodes.delete(id);
  }

  /** Replaces everything of one shard (a reload): removes its nodes, then upserts `entries`. */
  replaceShard(shard: number, entries: Iterable<SnapshotEntry>): void {
    if ((this.shardNodes[shard] ?? 0) > 0)
      for (const node of [...this.nodes.values()]) if (node.shard === shard) this.remove(node.entry.id);
    // the load order is merged once at the end, not every nodes ÷ 8 upserts of a large shard
    this.bulk = true;
    try {
      for (const entry of entries) this.upsert(entry, shard);
    } finally {
      this.bulk = false;
    }
    if (this.loadOrder.due(this.next, this.nodes.size)) this.mergeLoadOrder();
  }

  private mergeLoadOrder(): void {
    this.loadOrder.merge(this.next, this.load, this.gpu0, (s) => this.slots[s] !== undefined);
  }

  private writeSlot(s: number, e: SnapshotEntry): void {
    this.running[s] = e.running;
    this.reserved[s] = e.reserved;
    this.max[s] = e.max;
    this.gpuPct[s] = e.gpuPct ?? NaN;
    this.load[s] = (e.running + e.reserved) / e.max;
    const gpu = e.gpuPct ?? NaN;
    this.gpu0[s] = gpu === gpu ? gpu : 0;
    this.peak[s] = Math.max(e.cpu, e.gpuPct ?? -Infinity, e.mem);
    this.quarantinedUntil[s] = e.quarantinedUntil ?? 0;
    this.hash[s] = rendezvousNodeHash(e.id);
    setBit(this.live, s);
    if (e.status === 'offline') setBit(this.offline, s);
    else if (e.status !== 'ready') setBit(this.notReady, s);
    if (e.draining) setBit(this.draining, s);
    if ((e.quarantinedUntil ?? 0) > 0) {
      setBit(this.quarantined, s);
      this.quarantinedNodes++;
    }
    if (e.gpu) setBit(this.gpu, s);
    if (e.public) setBit(this.acceptsPublic, s);
    if (e.running + e.reserved >= e.max) setBit(this.full, s);
    if (this.hot !== null && this.peak[s] >= this.hotThreshold) setBit(this.hot, s);
    if (this.marked.size > 0 && this.marked.has(e.id)) setBit(this.knownMarks, s);
  }

  private predicates(): Bits[] {
    const all = [this.live, this.offline, this.notReady, this.draining, this.quarantined, this.gpu];
    all.push(this.acceptsPublic, this.full, this.knownMarks);
    if (this.hot !== null) all.push(this.hot);
    return all;
  }

  private clearSlot(s: number): void {
    if (hasBit(this.quarantined, s)) this.quarantinedNodes--;
    for (const bits of this.predicates()) clearBit(bits, s);
  }

  private allocate(): number {
    if (this.next >= this.capacity) {
      if (this.capacity > 0 && this.nodes.size * 2 <= this.capacity) this.compact();
      else this.resize(Math.max(MIN_CAPACITY, this.capacity * 2));
    }
    return this.next++;
  }

  /** Renumbers the slots in use 0..n-1, in order: slot order (and so visit order) is kept. */
  private compact(): void {
    const moved = new Int32Array(this.next).fill(-1);
    let n = 0;
    for (let s = 0; s < this.next; s++) if (this.slots[s] !== undefined) moved[s] = n++;
    const words = this.words;
    const remap = (bits: Bits): void => {
      const out = new Uint32Array(bits.length);
      for (let w = 0; w < words; w++) {
        for (let b = bits[w]!; b !== 0; b &= b - 1) {
          const to = moved[(w << 5) | (31 - Math.clz32(b & -b))]!;
          if (to >= 0) setBit(out, to);
        }
      }
      bits.set(out);
    };
    for (const bits of this.predicates()) remap(bits);
    this.sets.forEachBits((bits) => {
      remap(bits);
      return bits;
    });
    for (const arr of [
      this.running,
      this.reserved,
      this.max,
      this.gpuPct,
      this.load,
      this.gpu0,
      this.peak,
      this.quarantinedUntil,
    ]) {
      for (let s = 0; s < this.next; s++) if (moved[s]! >= 0) arr[moved[s]!] = arr[s]!;
    }
    for (let s = 0; s < this.next; s++) if (moved[s]! >= 0) this.hash[moved[s]!] = this.hash[s]!;
    const slots: (Slotted | undefined)[] = [];
    for (let s = 0; s < this.next; s++) {
      const node = this.slots[s];
      if (node === undefined) continue;
      node.slot = moved[s]!;
      slots[node.slot] = node;
    }
    this.slots = slots;
    this.loadOrder.remap(moved, n);
    this.next = n;
  }

  private resize(capacity: number): void {
    const grow = <T extends Float64Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    const f64 = (n: number) => new Float64Array(n);
    this.running = grow(this.running, f64);
    this.reserved = grow(this.reserved, f64);
    this.max = grow(this.max, f64);
    this.gpuPct = grow(this.gpuPct, f64);
    this.load = grow(this.load, f64);
    this.gpu0 = grow(this.gpu0, f64);
    this.peak = grow(this.peak, f64);
    this.quarantinedUntil = grow(this.quarantinedUntil, f64);
    this.hash = grow(this.hash, (n) => new Uint32Array(n));
    const words = (n: number) => new Uint32Array(n >>> 5);
    this.live = grow(this.live, words);
    this.offline = grow(this.offline, words);
    this.notReady = grow(this.notReady, words);
    this.draining = grow(this.draining, words);
    this.quarantined = grow(this.quarantined, words);
    this.gpu = grow(this.gpu, words);
    this.acceptsPublic = grow(this.acceptsPublic, words);
    this.full = grow(this.full, words);
    this.knownMarks = grow(this.knownMarks, words);
    this.zero = words(capacity);
    if (this.hot !== null) this.hot = grow(this.hot, words);
    this.sets.forEachBits((bits) => grow(bits, words));
    this.capacity = capacity;
  }
}
