import { describe, expect, it } from 'vitest';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { select } from '../../services/selector/selection.ts';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import { checkInvariants, node, policy, request, withLang } from '../support/selection-fixtures.ts';

/**
 * Issue 12 deliverable 4: the index selection runs over. The full-pipeline pair comes from the
 * worker's flush (entry.pools); node slots survive any sequence of upserts and removals.
 */

const index = (...entries: SnapshotEntry[]): SnapshotIndex => {
  const i = new SnapshotIndex();
  for (const e of entries) i.upsert(e, 0);
  return i;
};

describe('select: the pair comes from the worker pools', () => {
  it('a node its languages qualify is a candidate only once the worker lists the pool', () => {
    const idx = index(node('listed'), node('not-yet', { pools: [] }), node('other', { pools: ['ja:en'] }));
    const r = select(idx, request(), policy());
    checkInvariants(idx, r);
    expect(r.ranked).toEqual(['listed']);
    expect(r.breakdown.rejected).toEqual({ tts_lang_unsupported: 2 });
    // ASR+NMT without TTS does not use the pools: all three
    const noTts = select(
      idx,
      request({ pipeline: { asr: true, nmt: true, tts: false, semantic: false, tone: false } }),
      policy(),
    );
    expect(noTts.breakdown.eligible).toBe(3);
  });

  it('a pool the languages no longer give (re-index pending) does not make a candidate', () => {
    const idx = index(
      withLang('moved', { asr_languages: ['zh'], tts_languages: ['en'] }, { pools: ['zh:en', 'auto:en'] }),
    );
    const r = select(idx, request(), policy());
    checkInvariants(idx, r);
    expect(r.breakdown.rejected).toEqual({ lang_pair_unsupported: 1 });
  });

  it('an offline node, in no pool by the worker, is counted as offline when its languages fit', () => {
    const idx = index(node('off', { status: 'offline', pools: [] }), node('on'));
    const r = select(idx, request({ srcLang: 'auto' }), policy());
    expect(r.breakdown.rejected).toEqual({ offline: 1 });
    expect(r.breakdown.candidates).toBe(2);
  });
});

describe('SnapshotIndex slots', () => {
  it('any sequence of upserts and removals selects as an index built afresh in the same order', () => {
    let seed = 11;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const live = new Map<string, SnapshotEntry>();
    const idx = new SnapshotIndex();
    const variant = (id: string): SnapshotEntry =>
      node(id, {
        running: Math.floor(random() * 5),
        status: random() < 0.1 ? 'offline' : random() < 0.1 ? 'degraded' : 'ready',
        cpu: Math.floor(random() * 100),
        ...(random() < 0.2 ? { lang: { asr_languages: ['ja'], tts_languages: ['en'] } } : {}),
      });
    for (let step = 0; step < 6000; step++) {
      const id = `n${Math.floor(random() * 700)}`;
      if (random() < 0.1) {
        idx.remove(id);
        live.delete(id);
      } else {
        const e = variant(id);
        idx.upsert(e, 0);
        live.delete(id); // a Map keeps insertion order: re-inserting moves it last, as an upsert does
        live.set(id, e);
      }
      if (step % 1500 === 1499) {
        const fresh = index(...live.values());
        for (const req of [
          request(),
          request({ srcLang: 'auto', autoLangs: ['ja', 'zh'] }),
          request({ excludeNodeIds: [id] }),
        ]) {
          const a = select(idx, req, policy());
          const b = select(fresh, req, policy());
          checkInvariants(idx, a);
          expect(a).toEqual(b);
        }
      }
    }
  });

  it('knownLoadIds asks only those ids and selects as the callback alone', () => {
    const entries = Array.from({ length: 40 }, (_, i) => node(`k${i}`, { running: i % 4 }));
    const idx = index(...entries);
    const known = new Map([
      ['k1', { running: 3, reserved: 1 }],
      ['k2', { running: 0, reserved: 3 }],
      ['k5', { running: 2, reserved: 0 }],
    ]);
    const asked: string[] = [];
    const knownLoad = (id: string) => {
      asked.push(id);
      return known.get(id);
    };
    const withIds = select(idx, request(), policy({ knownLoad, knownLoadIds: () => known.keys() }));
    expect(asked.sort()).toEqual(['k1', 'k2', 'k5']);
    const alone = select(idx, request(), policy({ knownLoad: (id) => known.get(id) }));
    expect(withIds).toEqual(alone);
    expect(alone.breakdown.rejected.capacity_exceeded).toBe(2);
  });
});
