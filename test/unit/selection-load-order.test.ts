import { describe, expect, it } from 'vitest';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { MAX_RANKED, select, type SelectionPolicy } from '../../services/selector/selection.ts';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import {
  node,
  policy,
  referenceBreakdown,
  replay,
  request,
  workerPools,
} from '../support/selection-fixtures.ts';

/**
 * Least-loaded ranking over thousands of eligible nodes walks the index's load order
 * (load-order.ts, least-loaded.ts) instead of comparing every node: its answer must be the
 * contract's — the eligible nodes in visit order (the order of their last upsert), stably
 * sorted by (load, GPU%) with known load counted — through re-upserts (the order's tail and
 * merges), removals (freed slots in the order) and compaction.
 */

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

class Fleet {
  readonly index = new SnapshotIndex();
  /** current entries in the order of their last upsert (= visit order) */
  readonly entries = new Map<string, SnapshotEntry>();
  constructor(private readonly random: () => number) {}

  upsert(id: string, over: Partial<SnapshotEntry> = {}): void {
    const r = this.random;
    const max = 10 + Math.floor(r() * 30);
    const e = node(id, {
      max,
      running: r() < 0.05 ? max : 1 + Math.floor(r() * (max - 1)), // near-distinct loads, some full
      reserved: r() < 0.2 ? 1 : 0,
      gpuPct: r() < 0.02 ? null : Math.floor(r() * 160) / 2, // a few ties on purpose
      status: r() < 0.05 ? 'offline' : 'ready',
      draining: r() < 0.05,
      cpu: r() < 0.05 ? 95 : 10,
      ...over,
    });
    this.entries.delete(id);
    this.entries.set(id, e);
    this.index.upsert({ ...e, pools: workerPools(e) }, 0);
  }

  remove(id: string): void {
    this.entries.delete(id);
    this.index.remove(id);
  }

  /** What least-loaded ranking must return, from the reference and a sort. */
  expected(pol: SelectionPolicy, preferred: string | null): string[] {
    const req = request({ preferredNodeId: preferred });
    const all = [...this.entries.values()];
    const { reasons } = referenceBreakdown(all, req, pol);
    const eligible = all.filter((e) => reasons.get(e.id) === null);
    const load = (e: SnapshotEntry): number => {
      const k = pol.knownLoad?.(e.id);
      const running = Math.max(e.running, k?.running ?? 0);
      const reserved = Math.max(e.reserved, k?.reserved ?? 0);
      return (running + reserved) / e.max;
    };
    const sorted = eligible
      .filter((e) => e.id !== preferred)
      .map((e, i) => ({ id: e.id, l: load(e), g: e.gpuPct ?? 0, i }))
      .sort((a, b) => a.l - b.l || a.g - b.g || a.i - b.i)
      .map((x) => x.id);
    const head = preferred !== null && eligible.some((e) => e.id === preferred) ? [preferred] : [];
    return [...head, ...sorted].slice(0, MAX_RANKED);
  }
}

describe('least-loaded ranking by the load order', () => {
  it('equals the contract through re-upserts, removals and compaction, with known load', () => {
    const random = seeded(42);
    const f = new Fleet(random);
    for (let i = 0; i < 3000; i++) f.upsert(`n${i}`);
    const known = new Map<string, { running: number; reserved: number }>();
    const pol = policy({ affinity: false, knownLoad: (id) => known.get(id) });
    const check = (preferred: string | null = null): void => {
      const r = select(f.index, request({ preferredNodeId: preferred }), pol);
      expect(r.breakdown.eligible).toBeGreaterThan(256); // large enough for the walk
      expect(r.ranked).toEqual(f.expected(pol, preferred));
    };
    check();
    for (let round = 0; round < 6; round++) {
      // re-upserts (the tail grows past the merge threshold every other round), removals, new ids
      for (let i = 0; i < 700; i++) f.upsert(`n${Math.floor(random() * 3000)}`);
      for (let i = 0; i < 150; i++) f.remove(`n${Math.floor(random() * 3000)}`);
      for (let i = 0; i < 100; i++) f.upsert(`x${round}-${i}`);
      known.clear();
      for (const id of f.entries.keys()) if (random() < 0.1) known.set(id, { running: 0, reserved: 1 });
      check();
      check(`n${round * 11}`);
    }
    // the least loaded node, in the merged order, overridden by known load: still among the best
    f.upsert('idle', {
      running: 0,
      reserved: 0,
      max: 40,
      gpuPct: 0,
      status: 'ready',
      draining: false,
      cpu: 10,
    });
    for (let i = 0; i < 1100; i++) f.upsert(`n${Math.floor(random() * 3000)}`);
    known.set('idle', { running: 0, reserved: 1 });
    check();
    expect(select(f.index, request(), pol).ranked).toContain('idle');
    // many removals then upserts: the slots compact (renumbered, order kept)
    for (let i = 0; i < 3000; i += 2) f.remove(`n${i}`);
    for (let i = 0; i < 4000; i++) f.upsert(`y${i}`);
    check();
  });

  it('p2c draws and the least-loaded runners-up agree with the listed order', () => {
    const f = new Fleet(seeded(7));
    for (let i = 0; i < 2000; i++) f.upsert(`n${i}`);
    const pol = policy({ strategy: 'p2c', affinity: false, random: replay(0.25, 0.75) });
    const r = select(f.index, request(), pol);
    const all = [...f.entries.values()];
    const { reasons } = referenceBreakdown(all, request(), pol);
    const eligible = all.filter((e) => reasons.get(e.id) === null);
    const a = eligible[Math.floor(0.25 * eligible.length)]!;
    let bi = Math.floor(0.75 * (eligible.length - 1));
    if (bi >= Math.floor(0.25 * eligible.length)) bi++;
    const b = eligible[bi]!;
    const la = (a.running + a.reserved) / a.max;
    const lb = (b.running + b.reserved) / b.max;
    const first = lb < la || (lb === la && (b.gpuPct ?? 0) < (a.gpuPct ?? 0)) ? b : a;
    expect(r.choice).toBe('p2c');
    expect(r.ranked[0]).toBe(first.id);
    const rest = f.expected(pol, null).filter((id) => id !== first.id);
    expect(r.ranked.slice(1)).toEqual(rest.slice(0, MAX_RANKED - 1));
  });
});
