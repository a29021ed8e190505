import { describe, expect, it } from 'vitest';
import { SERVICE_TYPES } from '../../shared/protocol/node-messages.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { hasBit } from '../../services/selector/bitset.ts';
import { LangKeys, type IndexKind } from '../../services/selector/index-keys.ts';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import { node, workerPools } from '../support/selection-fixtures.ts';

/**
 * The index sets kept by group (index-sets.ts): whatever the sequence of upserts and removals —
 * nodes changing group, groups emptying, keys disappearing — every set has exactly the ids, the
 * size and the bits a per-node index would give, and `keys` lists exactly the keys with nodes.
 */

const KINDS: IndexKind[] = [
  'pool',
  'asrNmt',
  'nmt',
  'asr',
  'tts',
  'semantic',
  'asrSemantic',
  'type',
  'feature',
];
const LANGS = [
  {
    asr_languages: ['zh', 'en'],
    tts_languages: ['en'],
    nmt_capabilities: [{ model_id: 'm', languages: ['zh', 'en'], rule: 'any_to_any' as const }],
  },
  { asr_languages: ['ja'], tts_languages: ['en', 'ja'], semantic_languages: ['ja'] },
  {
    asr_languages: ['de', 'en'],
    tts_languages: ['de'],
    nmt_capabilities: [{ model_id: 'n', languages: ['de', 'en'], rule: 'any_to_en' as const }],
  },
];

/** What a per-node index holds: kind → key → ids. */
function naive(entries: Iterable<SnapshotEntry>): Map<IndexKind, Map<string, Set<string>>> {
  const keys = new LangKeys();
  const out = new Map<IndexKind, Map<string, Set<string>>>();
  const add = (kind: IndexKind, key: string, id: string): void => {
    if (!out.has(kind)) out.set(kind, new Map());
    const byKey = out.get(kind)!;
    if (!byKey.has(key)) byKey.set(key, new Set());
    byKey.get(key)!.add(id);
  };
  for (const e of entries) {
    const d = keys.of(e);
    for (const [kind, key] of d.keys) add(kind, key, e.id);
    for (const pool of e.status === 'offline' ? d.pools : e.pools) add('pool', pool, e.id);
    for (const type of e.types) add('type', type, e.id);
    for (const flag of e.features) add('feature', flag, e.id);
  }
  return out;
}

describe('index sets by group', () => {
  it('hold exactly the ids, sizes and bits of a per-node index through upserts and removals', () => {
    let seed = 5;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const idx = new SnapshotIndex();
    const live = new Map<string, SnapshotEntry>();
    for (let step = 0; step < 4000; step++) {
      const id = `n${Math.floor(random() * 300)}`;
      if (random() < 0.15) {
        idx.remove(id);
        live.delete(id);
      } else {
        const lang = pick(LANGS);
        const status = random() < 0.1 ? 'offline' : 'ready';
        const base = node(id, { lang, status });
        const e: SnapshotEntry = {
          ...base,
          // the worker's pools, or lagging behind a capability change
          pools: random() < 0.1 ? ['zh:en'] : workerPools(base),
          types: SERVICE_TYPES.filter(() => random() < 0.7),
          features: random() < 0.3 ? ['emotion_detection'] : [],
        };
        idx.upsert(e, 0);
        live.set(id, e);
      }
      if (step % 40 === 0)
        idx.bits(idx.index(pick(KINDS), pick(['zh:en', 'en', 'ja', 'asr', '*', 'emotion_detection'])));
      if (step % 500 !== 499) continue;
      const want = naive(live.values());
      for (const kind of KINDS) {
        const byKey = want.get(kind) ?? new Map<string, Set<string>>();
        expect([...idx.keys(kind)].sort()).toEqual([...byKey.keys()].sort());
        for (const [key, ids] of byKey) {
          const set = idx.index(kind, key);
          expect(set.size).toBe(ids.size);
          expect([...set].sort()).toEqual([...ids].sort());
          const bits = idx.bits(set);
          for (const n of live.keys()) expect(hasBit(bits, idx.slotOf(n))).toBe(ids.has(n));
        }
      }
    }
    for (const id of [...live.keys()]) idx.remove(id);
    for (const kind of KINDS) expect([...idx.keys(kind)]).toEqual([]);
  });
});
