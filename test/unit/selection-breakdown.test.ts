import { describe, expect, it } from 'vitest';
import { select } from '../../services/selector/selection.ts';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import {
  node,
  withLang,
  fleet,
  policy,
  run,
  checkInvariants,
  CONCRETE_REASONS,
  orderFixture,
} from '../support/selection-fixtures.ts';

// ---------------------------------------------------------------------------------------------
// Reasons and their order

describe('select: breakdown reasons', () => {
  it.each(CONCRETE_REASONS)('a node failing only %s is counted under it, with a sample', (reason) => {
    const { index, req } = orderFixture([reason]);
    const r = select(index, req, policy());
    checkInvariants(index, r);
    expect(r.breakdown.rejected).toEqual({ [reason]: 1 });
    expect(r.breakdown.samples).toEqual({ [reason]: ['bad'] });
    expect(r.breakdown.eligible).toBe(1);
    expect(r.breakdown.candidates).toBe(CONCRETE_REASONS.indexOf(reason) < 4 ? 1 : 2);
    expect(r.ranked).toEqual(['good']);
  });

  it.each(CONCRETE_REASONS.map((reason, i) => [reason, CONCRETE_REASONS.slice(i)] as const))(
    'a node failing %s and every later reason counts under %s only',
    (reason, breaks) => {
      const { index, req } = orderFixture(breaks);
      const r = select(index, req, policy());
      checkInvariants(index, r);
      expect(r.breakdown.rejected).toEqual({ [reason]: 1 });
    },
  );

  it.each([
    ['src_auto_no_candidate', ['src_auto_no_candidate', 'lang_pair_unsupported', 'offline']],
    ['lang_pair_unsupported', ['lang_pair_unsupported', 'tts_lang_unsupported', 'draining']],
    ['tts_lang_unsupported', ['tts_lang_unsupported', 'offline']],
  ] as const)('auto source: first failing reason %s', (reason, breaks) => {
    const { index, req } = orderFixture(breaks);
    req.srcLang = 'auto';
    // semantic for auto: some ASR candidate is a semantic language (zh on both nodes)
    const r = select(index, req, policy());
    checkInvariants(index, r);
    expect(r.breakdown.rejected).toEqual({ [reason]: 1 });
  });

  it('offline beats status_not_ready: an offline node is not counted as not ready', () => {
    const index = fleet(node('a', { status: 'offline' }), node('b', { status: 'registering' }), node('c'));
    const r = run(index);
    expect(r.breakdown.rejected).toEqual({ offline: 1, status_not_ready: 1 });
  });

  it('samples stop at 3 per reason while counts go on', () => {
    const entries = Array.from({ length: 10 }, (_, i) => node(`off-${i}`, { status: 'offline' }));
    const noPair = Array.from({ length: 10 }, (_, i) =>
      withLang(`ja-${i}`, { asr_languages: ['zh'], tts_languages: ['en'] }),
    );
    const index = fleet(...entries, ...noPair, node('ok'));
    const r = run(index);
    checkInvariants(index, r);
    expect(r.breakdown.rejected).toEqual({ offline: 10, lang_pair_unsupported: 10 });
    expect(r.breakdown.samples.offline).toHaveLength(3);
    expect(r.breakdown.samples.lang_pair_unsupported).toHaveLength(3);
    for (const id of r.breakdown.samples.lang_pair_unsupported!) expect(id).toMatch(/^ja-/);
  });

  it('the message lists the reasons by count when nothing is eligible', () => {
    const index = fleet(
      ...Array.from({ length: 3 }, (_, i) => withLang(`x-${i}`, { asr_languages: ['de'] })),
      ...Array.from({ length: 5 }, (_, i) => node(`full-${i}`, { running: 4 })),
      node('off', { status: 'offline' }),
      withLang('no-nmt', { asr_languages: ['zh'] }),
    );
    const r = run(index);
    checkInvariants(index, r);
    expect(r.ranked).toEqual([]);
    expect(r.choice).toBeNull();
    expect(r.pool).toBe('zh:en');
    expect(r.message).toBe(
      '0/10 nodes available: 5 capacity_exceeded, 3 asr_lang_unsupported, 1 lang_pair_unsupported, 1 offline',
    );
    expect(r.breakdown).toMatchObject({ total_nodes: 10, candidates: 6, eligible: 0 });
  });

  it('the message is a short summary when some node is eligible', () => {
    const index = fleet(node('a'), node('b', { cpu: 90 }));
    expect(run(index).message).toBe('1/2 nodes available: 1 resource_threshold_exceeded');
    expect(run(fleet(node('a'))).message).toBe('1/1 nodes available');
    expect(run(new SnapshotIndex()).message).toBe('0/0 nodes available');
  });
});
