import { describe, expect, it } from 'vitest';
import { select } from '../../services/selector/selection.ts';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import { checkInvariants, node, policy, request } from '../support/selection-fixtures.ts';

/**
 * Known load found by bit set (SelectionPolicy.knownLoadMarked): the placer marks the nodes it
 * learnt a load for, the marks follow each node to its next slot, and a selection asks
 * knownLoad about the marked candidates only — with the same result as asking about all.
 */
describe('knownLoadMarked', () => {
  it('asks only the marked nodes still in the running and selects as the callback alone', () => {
    const idx = new SnapshotIndex();
    for (let i = 0; i < 40; i++) idx.upsert(node(`k${i}`, { running: i % 4 }), 0);
    const known = new Map([
      ['k1', { running: 3, reserved: 1 }],
      ['k2', { running: 0, reserved: 3 }],
      ['k5', { running: 2, reserved: 0 }],
      ['k7', { running: 0, reserved: 1 }],
    ]);
    for (const id of known.keys()) idx.markKnown(id);
    idx.upsert(node('k7', { running: 0, draining: true }), 0); // re-upserted: a new slot, still marked, not in the running
    const asked: string[] = [];
    const knownLoad = (id: string) => {
      asked.push(id);
      return known.get(id);
    };
    const marked = select(idx, request(), policy({ knownLoad, knownLoadMarked: true }));
    checkInvariants(idx, marked);
    expect(asked.sort()).toEqual(['k1', 'k2', 'k5']);
    const alone = select(idx, request(), policy({ knownLoad: (id) => known.get(id) }));
    expect(marked).toEqual(alone);
    expect(alone.breakdown.rejected.capacity_exceeded).toBe(2);
  });

  it('marks survive removal, re-adding and slot compaction; unmarked nodes are not asked', () => {
    const idx = new SnapshotIndex();
    for (let i = 0; i < 600; i++) idx.upsert(node(`n${i}`), 0);
    idx.markKnown('n10');
    idx.markKnown('n500');
    idx.markKnown('gone');
    idx.remove('n10');
    // many upserts: the slots run out and are compacted or grown
    for (let round = 0; round < 4; round++) for (let i = 100; i < 600; i++) idx.upsert(node(`n${i}`), 0);
    idx.upsert(node('n10'), 0);
    idx.upsert(node('gone'), 0);
    idx.unmarkKnown('gone');
    const asked: string[] = [];
    select(idx, request(), policy({ knownLoad: (id) => (asked.push(id), undefined), knownLoadMarked: true }));
    expect(asked.sort()).toEqual(['n10', 'n500']);
  });
});
