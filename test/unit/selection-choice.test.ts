import { describe, expect, it } from 'vitest';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { rendezvousPick } from '../../services/selector/rendezvous.ts';
import { MAX_RANKED } from '../../services/selector/selection.ts';
import type { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import { node, fleet, run, loaded, replay } from '../support/selection-fixtures.ts';

// ---------------------------------------------------------------------------------------------
// Choice

describe('select: choice', () => {
  it('preferred node first when eligible, whatever the key or strategy', () => {
    const index = fleet(...loaded(0, 1, 2, 3));
    for (const strategy of ['p2c', 'least_loaded', 'random'] as const) {
      const r = run(index, { preferredNodeId: 'n3', routingKey: 'k' }, { strategy });
      expect(r.ranked[0]).toBe('n3');
      expect(r.choice).toBe('preferred');
      expect(r.ranked).toHaveLength(4);
    }
  });

  it.each<[string, Partial<SnapshotEntry>]>([
    ['full', { running: 4 }],
    ['offline', { status: 'offline' }],
    ['unknown id', {}],
  ])('preferred node not eligible (%s): normal choice', (name, over) => {
    const index = fleet(node('p', over), ...loaded(1, 0));
    const r = run(index, { preferredNodeId: name === 'unknown id' ? 'ghost' : 'p' });
    expect(r.choice).toBe('least_loaded');
    expect(r.ranked[0]).toBe(name === 'unknown id' ? 'p' : 'n1');
  });

  it('preferred excluded: excluded wins', () => {
    const index = fleet(...loaded(0, 0));
    const r = run(index, { preferredNodeId: 'n0', excludeNodeIds: ['n0'] });
    expect(r.ranked).toEqual(['n1']);
  });

  it('least_loaded: by (running + reserved) / max, then GPU%, then snapshot order', () => {
    const index = fleet(
      node('a', { running: 2, max: 4 }), // 0.5
      node('b', { running: 1, reserved: 1, max: 8 }), // 0.25
      node('c', { running: 2, max: 8, gpuPct: 50 }), // 0.25, busier GPU
      node('d', { running: 2, max: 8, gpuPct: null }), // 0.25, GPU unreported = 0
      node('e', { running: 3, max: 4 }), // 0.75
    );
    const r = run(index, {}, { strategy: 'least_loaded' });
    expect(r.ranked).toEqual(['d', 'b', 'c', 'a', 'e']);
    expect(r.choice).toBe('least_loaded');
  });

  it('least_loaded counts known load', () => {
    const index = fleet(...loaded(0, 1));
    const r = run(index, {}, { knownLoad: (id) => (id === 'n0' ? { running: 0, reserved: 2 } : undefined) });
    expect(r.ranked).toEqual(['n1', 'n0']);
  });

  it.each<[number[], number[], string]>([
    // random() picks index a = floor(r * n), then b among the others
    [[0, 0], [0, 1, 2, 3], 'n0'], // a = n0, b = n1 → n0 less loaded
    [[0.99, 0], [0, 1, 2, 3], 'n0'], // a = n3, b = n0 → n0
    [[0.5, 0.5], [3, 2, 1, 0], 'n2'], // a = n2 (load 1), b = n1 (load 2) → n2
    [[0.5, 0.9], [3, 2, 1, 0], 'n3'], // a = n2 (load 1), b = n3 (load 0) → n3
    [[0.25, 0.9], [0, 1, 2, 0], 'n3'], // a = n1, b = n3 → n3
    [[0.25, 0.4], [0, 2, 2, 0], 'n1'], // a = n1, b = n2, equal → a
  ])('p2c with random %j over loads %j picks %s', (values, loads, expected) => {
    const index = fleet(...loaded(...loads));
    const r = run(index, {}, { strategy: 'p2c', random: replay(...values) });
    expect(r.choice).toBe('p2c');
    expect(r.ranked[0]).toBe(expected);
    expect(r.ranked).toHaveLength(4);
    expect(new Set(r.ranked)).toEqual(new Set(['n0', 'n1', 'n2', 'n3']));
  });

  it('p2c never picks the more loaded of its two', () => {
    const index = fleet(...loaded(0, 3, 3, 3, 3, 3, 3, 3, 3, 3));
    let seed = 7;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const picks = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      const first = run(index, {}, { strategy: 'p2c', random }).ranked[0]!;
      picks.set(first, (picks.get(first) ?? 0) + 1);
    }
    // n0 wins every draw it is part of: ~2/10 of them.
    expect(picks.get('n0')!).toBeGreaterThan(60);
    expect(picks.size).toBeGreaterThan(5);
  });

  it('p2c with one eligible node', () => {
    const r = run(fleet(node('only')), {}, { strategy: 'p2c', random: () => 0.999 });
    expect(r.ranked).toEqual(['only']);
  });

  it.each([
    [0, 'n0'],
    [0.5, 'n2'],
    [0.999, 'n3'],
    [1, 'n3'],
  ])('random strategy with random() = %s picks %s, then the least loaded others', (value, expected) => {
    const index = fleet(...loaded(3, 2, 1, 0));
    const r = run(index, {}, { strategy: 'random', random: () => value });
    expect(r.ranked[0]).toBe(expected);
    expect(r.ranked.slice(1)).toEqual(['n3', 'n2', 'n1', 'n0'].filter((id) => id !== expected));
  });

  it('ranked is bounded and continues in ascending load after the choice', () => {
    const loads = [3, 0, 1, 2, 0, 1, 2, 3, 1, 0, 2, 1];
    const index = fleet(...loads.map((r, i) => node(`n${i}`, { running: r, max: 4 })));
    const r = run(index, {}, { strategy: 'random', random: () => 0 }); // picks n0 (load 3)
    expect(r.ranked).toEqual(['n0', 'n1', 'n4', 'n9', 'n2', 'n5', 'n8', 'n11']);
    expect(r.ranked).toHaveLength(MAX_RANKED);
  });
});

// ---------------------------------------------------------------------------------------------
// Routing-key affinity

describe('select: routing-key affinity', () => {
  const ids = Array.from({ length: 20 }, (_, i) => `node-${i}`);
  const keys = Array.from({ length: 400 }, (_, i) => `session-${i}`);
  const choose = (index: SnapshotIndex, key: string): string => run(index, { routingKey: key }).ranked[0]!;
  const assignment = (index: SnapshotIndex): Map<string, string> =>
    new Map(keys.map((k) => [k, choose(index, k)]));

  it('the same key goes to the same node, whatever the load and strategy', () => {
    const index = fleet(...ids.map((id) => node(id)));
    const first = choose(index, 'session-1');
    for (const strategy of ['p2c', 'least_loaded', 'random'] as const) {
      const r = run(index, { routingKey: 'session-1' }, { strategy, random: Math.random });
      expect(r.ranked[0]).toBe(first);
      expect(r.choice).toBe('affinity');
    }
    expect(first).toBe(rendezvousPick('session-1', ids));
    index.upsert(node(first, { running: 3 }), 0);
    expect(choose(index, 'session-1')).toBe(first);
  });

  it('keys spread over the nodes', () => {
    const counts = new Map<string, number>();
    for (const owner of assignment(fleet(...ids.map((id) => node(id)))).values())
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    expect(counts.size).toBe(ids.length);
    for (const n of counts.values()) expect(n).toBeGreaterThan(5); // 20 expected each
  });

  it('changing or removing an unrelated node moves no key it did not hold', () => {
    const index = fleet(...ids.map((id) => node(id)));
    const before = assignment(index);
    const victim = 'node-7';
    index.upsert(node(victim, { cpu: 99 }), 0); // ineligible now
    const after = assignment(index);
    for (const [key, owner] of before) {
      if (owner === victim) expect(after.get(key)).not.toBe(victim);
      else expect(after.get(key)).toBe(owner);
    }
    index.upsert(node(victim), 0); // back: everything as before
    expect(assignment(index)).toEqual(before);
    index.upsert(node('node-new'), 0); // a new node takes only keys that now prefer it
    const withNew = assignment(index);
    for (const [key, owner] of withNew) expect([before.get(key), 'node-new']).toContain(owner);
  });

  it('removing the chosen node moves only its keys, each to its runner-up (ranked[1])', () => {
    const index = fleet(...ids.map((id) => node(id)));
    const before = new Map(keys.map((k) => [k, run(index, { routingKey: k }).ranked]));
    index.remove('node-3');
    for (const [key, ranked] of before) {
      const now = choose(index, key);
      expect(now).toBe(ranked[0] === 'node-3' ? ranked[1] : ranked[0]);
    }
  });

  it('affinity off: the strategy decides', () => {
    const index = fleet(...loaded(2, 0, 1));
    const r = run(index, { routingKey: 'k' }, { affinity: false });
    expect(r.choice).toBe('least_loaded');
    expect(r.ranked[0]).toBe('n1');
  });

  it.each([[''], [null], [undefined]])('routing key %j: no affinity', (routingKey) => {
    const r = run(fleet(...loaded(2, 0, 1)), { routingKey });
    expect(r.choice).toBe('least_loaded');
  });
});
