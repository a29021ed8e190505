import { describe, expect, it } from 'vitest';
import { explain } from '../../services/selector/explain.ts';
import type { RejectReason } from '../../services/selector/selection.ts';
import {
  BREAK,
  CONCRETE_REASONS,
  FULL,
  fleet,
  node,
  policy,
  referenceBreakdown,
  request,
} from '../support/selection-fixtures.ts';

/** A random source that replays the same sequence (a fixed seed). */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** POST /v1/explain's core (services/selector/explain.ts): every node under its first failing reason. */
describe('explain (why not node X?)', () => {
  it('puts every node under the reason the naive reference finds, adding up to the breakdown', () => {
    const random = seeded(7);
    for (let round = 0; round < 5; round++) {
      const req = request({
        pipeline: { ...FULL, semantic: true, tone: true },
        features: ['persona_adaptation'],
      });
      const entries = Array.from({ length: 120 }, (_, i) => {
        const e = node(`n${i}`, { features: ['persona_adaptation'] });
        // each node breaks 0-2 reasons at random: its first one must win
        for (let k = Math.floor(random() * 3); k > 0; k--) {
          const reason = CONCRETE_REASONS[Math.floor(random() * CONCRETE_REASONS.length)]!;
          BREAK[reason](e, req);
        }
        return e;
      });
      const index = fleet(...entries);
      const pol = policy();
      const answer = explain(index, req, pol, null);
      const reference = referenceBreakdown(entries, req, pol);
      const mine = new Map<string, RejectReason | null>();
      for (const [reason, group] of Object.entries(answer.by_reason)) {
        expect(group.nodes.length).toBe(group.count); // fewer than EXPLAIN_IDS_PER_REASON here
        for (const id of group.nodes) mine.set(id, reason === 'eligible' ? null : (reason as RejectReason));
      }
      expect(mine).toEqual(reference.reasons);
      expect(answer.breakdown.rejected).toEqual(reference.rejected);
      for (const [reason, count] of Object.entries(answer.breakdown.rejected))
        expect(answer.by_reason[reason as RejectReason]?.count).toBe(count);
      expect(answer.by_reason.eligible?.count ?? 0).toBe(answer.breakdown.eligible);
    }
  });

  it('a named node: its reason with the figures behind it', () => {
    const index = fleet(
      node('ok'),
      node('full', { running: 3, reserved: 1, max: 4 }),
      node('hot', { cpu: 40, gpuPct: 91, mem: 88 }),
      node('en-only', { lang: { asr_languages: ['en'], tts_languages: ['en'] } }),
    );
    const req = request();
    const pol = policy({ resourceThreshold: 85 });
    expect(explain(index, req, pol, 'full').node).toMatchObject({
      reason: 'capacity_exceeded',
      figures: { running: 3, reserved: 1, max: 4, in_use: 4 },
    });
    expect(explain(index, req, pol, 'hot').node).toMatchObject({
      reason: 'resource_threshold_exceeded',
      figures: {
        threshold: 85,
        cpu_percent: 40,
        gpu_percent: 91,
        mem_percent: 88,
        over: ['gpu_percent', 'mem_percent'],
      },
    });
    expect(explain(index, req, pol, 'en-only').node).toMatchObject({
      reason: 'asr_lang_unsupported',
      figures: { needed_asr: 'zh', node_asr: ['en'] },
    });
    // this selector's own reservations count, as they do in placement
    const known = policy({ knownLoad: (id) => (id === 'ok' ? { running: 0, reserved: 4 } : undefined) });
    expect(explain(index, req, known, 'ok').node).toMatchObject({
      reason: 'capacity_exceeded',
      figures: { reserved: 4, snapshot_reserved: 0 },
    });
    const chosen = explain(index, req, pol, 'ok');
    expect(chosen.chosen).toBe('ok');
    expect(chosen.node).toMatchObject({ eligible: true, rank: 0, reason: null });
    expect(explain(index, req, pol, 'ghost').node).toMatchObject({
      known: false,
      reason: null,
      eligible: false,
    });
  });

  it('an eligible node that was not chosen: its rank and why another came first', () => {
    const index = fleet(node('idle'), node('busy', { running: 2 }));
    const answer = explain(index, request(), policy({ strategy: 'least_loaded' }), 'busy');
    expect(answer.chosen).toBe('idle');
    expect(answer.node).toMatchObject({ eligible: true, rank: 1, figures: { running: 2, load: 0.5 } });
    expect(answer.node!.text).toContain('less loaded nodes come first');
  });
});
