import {
  AUTO_LANG,
  languageProfile,
  pairKey,
  pipelinePools,
  type LanguageProfile,
} from '../../shared/language-pairs.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';

/**
 * Index kinds, each mapping a key to the ids of the nodes that have it:
 *  pool     "src:tgt" | "auto:tgt" — full pipeline: ASR src, NMT src→tgt, TTS tgt
 *  asrNmt   "src:tgt" | "auto:tgt" — ASR src and NMT src→tgt (pipelines without TTS)
 *  nmt      "src:tgt"               — NMT src→tgt
 *  asr | tts | semantic   language  — "*" = has at least one language of that kind
 *  type     service type            — reported ready
 * Nesting the selector relies on: pool ⊆ asrNmt ⊆ asr(src) and asrNmt ⊆ nmt(src:tgt).
 */
export type IndexKind = 'pool' | 'asrNmt' | 'nmt' | 'asr' | 'tts' | 'semantic' | 'type';

export const ANY_LANGUAGE = '*';

export interface ReplicaNode {
  readonly entry: SnapshotEntry;
  readonly shard: number;
  readonly profile: LanguageProfile;
}

interface Derived {
  profile: LanguageProfile;
  keys: [IndexKind, string][];
}

const EMPTY: ReadonlySet<string> = new Set();
const PROFILE_CACHE_LIMIT = 10_000;

/**
 * The selector's in-memory snapshot: node entries plus incremental indexes. Updated in place
 * per upsert/removal (O(keys of that node)), never rebuilt from a copy; a delta is applied
 * synchronously, so a selection never sees half of one. Pure: no I/O.
 */
export class SnapshotIndex {
  private readonly nodes = new Map<string, ReplicaNode & { keys: [IndexKind, string][] }>();
  private readonly indexes = new Map<IndexKind, Map<string, Set<string>>>();
  /** Language profiles are derived once per distinct language capability digest. */
  private readonly derived = new Map<string, Derived>();

  get size(): number {
    return this.nodes.size;
  }

  get(id: string): ReplicaNode | undefined {
    return this.nodes.get(id);
  }

  all(): IterableIterator<ReplicaNode> {
    return this.nodes.values();
  }

  /** Ids of the nodes with `key` in index `kind` (empty set when none). Do not mutate. */
  index(kind: IndexKind, key: string): ReadonlySet<string> {
    return this.indexes.get(kind)?.get(key) ?? EMPTY;
  }

  /** Keys present in an index, e.g. every pool. */
  keys(kind: IndexKind): IterableIterator<string> {
    return (this.indexes.get(kind) ?? new Map<string, Set<string>>()).keys();
  }

  upsert(entry: SnapshotEntry, shard: number): void {
    this.remove(entry.id);
    const d = this.derive(entry);
    const keys: [IndexKind, string][] = [
      ...d.keys,
      ...entry.types.map((t): [IndexKind, string] => ['type', t]),
    ];
    for (const [kind, key] of keys) this.add(kind, key, entry.id);
    this.nodes.set(entry.id, { entry, shard, profile: d.profile, keys });
  }

  remove(id: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    for (const [kind, key] of node.keys) {
      const ids = this.indexes.get(kind)?.get(key);
      ids?.delete(id);
      if (ids?.size === 0) this.indexes.get(kind)!.delete(key);
    }
    this.nodes.delete(id);
  }

  /** Replaces everything of one shard (a reload): removes its nodes, then upserts `entries`. */
  replaceShard(shard: number, entries: Iterable<SnapshotEntry>): void {
    for (const node of [...this.nodes.values()]) if (node.shard === shard) this.remove(node.entry.id);
    for (const entry of entries) this.upsert(entry, shard);
  }

  private add(kind: IndexKind, key: string, id: string): void {
    let byKey = this.indexes.get(kind);
    if (!byKey) this.indexes.set(kind, (byKey = new Map<string, Set<string>>()));
    let ids = byKey.get(key);
    if (!ids) byKey.set(key, (ids = new Set()));
    ids.add(id);
  }

  private derive(entry: SnapshotEntry): Derived {
    const cacheKey = entry.langDigest || JSON.stringify(entry.lang);
    const hit = this.derived.get(cacheKey);
    if (hit) return hit;
    const profile = languageProfile(entry.lang);
    const keys: [IndexKind, string][] = [];
    for (const pool of pipelinePools(profile)) keys.push(['pool', pool]);
    const autoTargets = new Set<string>();
    for (const pair of profile.nmtPairs) {
      keys.push(['nmt', pair]);
      const [src, tgt] = pair.split(':') as [string, string];
      if (profile.asr.has(src)) {
        keys.push(['asrNmt', pair]);
        autoTargets.add(tgt);
      }
    }
    for (const tgt of autoTargets) keys.push(['asrNmt', pairKey(AUTO_LANG, tgt)]);
    for (const [kind, langs] of [
      ['asr', profile.asr],
      ['tts', profile.tts],
      ['semantic', profile.semantic],
    ] as const) {
      for (const lang of langs) keys.push([kind, lang]);
      if (langs.size > 0) keys.push([kind, ANY_LANGUAGE]);
    }
    const d = { profile, keys };
    if (this.derived.size >= PROFILE_CACHE_LIMIT) this.derived.clear();
    this.derived.set(cacheKey, d);
    return d;
  }
}
