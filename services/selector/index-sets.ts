import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { clearBit, setBit, type Bits } from './bitset.ts';
import type { Derived, IndexKind } from './index-keys.ts';

/**
 * The SnapshotIndex's index sets (kinds and keys: index-keys.ts), kept by GROUP: the nodes whose
 * keys are all the same — one language digest (the language keys), the same published pools,
 * service types and feature flags — form one group, and an index set is the union of the groups
 * that have its key. A node joins or leaves its group (one Set operation, and a counter per key
 * of the group) instead of ~50 index Sets; a fleet of a few capability profiles has a few
 * groups whatever its size. A set's bit set over the node slots (bitset.ts) is built from its
 * groups' members when a selection first asks for it, then kept in place per join and leave.
 */

/** A node as the sets hold it: its entry and current slot. */
export interface Member {
  readonly entry: SnapshotEntry;
  slot: number;
}

/** Nodes with the same index keys. */
export interface Group {
  readonly key: string;
  /** the sets its keys name, each once */
  readonly sets: IndexSet[];
  readonly members: Set<Member>;
}

/** The nodes with one key of one kind: its groups' members. Iterating yields their ids. */
export class IndexSet implements Iterable<string> {
  size = 0;
  constructor(
    readonly kind: IndexKind,
    readonly key: string,
  ) {}

  readonly groups = new Set<Group>();
  /** the members' slots, once a selection asked (see IndexSets.bits) */
  bits: Bits | null = null;

  *[Symbol.iterator](): Iterator<string> {
    for (const group of this.groups) for (const member of group.members) yield member.entry.id;
  }
}

/** Index sets whose bit sets are kept (those selections asked for); beyond it they are dropped. */
const BITS_CACHE_LIMIT = 4096;
const EMPTY = new IndexSet('pool', '');
const NO_KEYS = new Map<string, IndexSet>();

export class IndexSets {
  private readonly byKind = new Map<IndexKind, Map<string, IndexSet>>();
  private readonly groups = new Map<string, Group>();
  /** the sets that have bits */
  private readonly withBits = new Set<IndexSet>();

  /** The set of `key` in `kind` (an empty one when none). Do not mutate. */
  get(kind: IndexKind, key: string): IndexSet {
    return this.byKind.get(kind)?.get(key) ?? EMPTY;
  }

  /** Keys present in a kind, e.g. every pool. */
  keys(kind: IndexKind): IterableIterator<string> {
    return (this.byKind.get(kind) ?? NO_KEYS).keys();
  }

  /**
   * The group of an entry whose languages gave `d`: its pools as published (those its
   * languages give while offline: the worker keeps an offline node in no pool, and the
   * breakdown counts it as `offline`), types and features.
   */
  groupOf(entry: SnapshotEntry, d: Derived): Group {
    const pools = entry.status === 'offline' ? d.pools : entry.pools;
    // NUL and SOH separate: no pool, service type or feature flag contains them
    const own = sameList(pools, d.pools) ? '' : `+${pools.join('\0')}`;
    const key = `${d.id}\x01${own}\x01${entry.types.join('\0')}\x01${entry.features.join('\0')}`;
    let group = this.groups.get(key);
    if (group === undefined) {
      const sets = new Set<IndexSet>();
      for (const [kind, k] of d.keys) sets.add(this.set(kind, k));
      for (const pool of pools) sets.add(this.set('pool', pool));
      for (const type of entry.types) sets.add(this.set('type', type));
      for (const flag of entry.features) sets.add(this.set('feature', flag));
      group = { key, sets: [...sets], members: new Set() };
      for (const set of group.sets) set.groups.add(group);
      this.groups.set(key, group);
    }
    return group;
  }

  join(member: Member, group: Group): void {
    group.members.add(member);
    for (const set of group.sets) {
      set.size++;
      if (set.bits !== null) setBit(set.bits, member.slot);
    }
  }

  leave(member: Member, group: Group): void {
    if (!group.members.delete(member)) return;
    for (const set of group.sets) {
      set.size--;
      if (set.bits !== null) clearBit(set.bits, member.slot);
    }
    if (group.members.size > 0) return;
    this.groups.delete(group.key);
    for (const set of group.sets) {
      set.groups.delete(group);
      if (set.groups.size > 0) continue;
      // no group left: the key is gone from its kind
      const byKey = this.byKind.get(set.kind);
      if (byKey?.get(set.key) === set) byKey.delete(set.key);
      if (byKey?.size === 0) this.byKind.delete(set.kind);
      set.bits = null;
      this.withBits.delete(set);
    }
  }

  /** The members' slots as bits (`words` long), built once and then kept. `set` non-empty. */
  bits(set: IndexSet, words: number): Bits {
    if (set.bits !== null) return set.bits;
    if (this.withBits.size >= BITS_CACHE_LIMIT) {
      for (const s of this.withBits) s.bits = null;
      this.withBits.clear();
    }
    const bits = new Uint32Array(words);
    for (const group of set.groups) for (const member of group.members) setBit(bits, member.slot);
    set.bits = bits;
    this.withBits.add(set);
    return bits;
  }

  /** Every kept bit set, for the index to grow or renumber (`replace` returns the new bits). */
  forEachBits(replace: (bits: Bits) => Bits): void {
    for (const set of this.withBits) set.bits = replace(set.bits!);
  }

  private set(kind: IndexKind, key: string): IndexSet {
    let byKey = this.byKind.get(kind);
    if (byKey === undefined) this.byKind.set(kind, (byKey = new Map<string, IndexSet>()));
    let set = byKey.get(key);
    if (set === undefined) byKey.set(key, (set = new IndexSet(kind, key)));
    return set;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
