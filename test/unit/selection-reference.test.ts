import fc from 'fast-check';
import { SERVICE_TYPES } from '../../shared/protocol/node-messages.ts';
import { describe, expect, it } from 'vitest';
import type { LanguageCapabilities } from '../../shared/language-pairs.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { FEATURE_EXPANSION } from '../../services/selector/feature-expansion.ts';
import { rendezvousPick } from '../../services/selector/rendezvous.ts';
import {
  REJECT_REASONS,
  select,
  type RejectReason,
  type SelectionPolicy,
  type SelectionRequest,
} from '../../services/selector/selection.ts';
import {
  node,
  withLang,
  fleet,
  request,
  policy,
  run,
  checkInvariants,
  referenceBreakdown,
  replay,
  loaded,
} from '../support/selection-fixtures.ts';

// ---------------------------------------------------------------------------------------------
// Against the naive reference, on random fleets and requests

const LANGS = ['zh', 'en', 'ja', 'de'];
const langList = fc.subarray(LANGS);
const rule = fc.constantFrom<'any_to_any' | 'any_to_en' | 'en_to_any'>(
  'any_to_any',
  'any_to_en',
  'en_to_any',
);
const langCaps: fc.Arbitrary<LanguageCapabilities> = fc.record({
  asr_languages: langList,
  tts_languages: langList,
  semantic_languages: langList,
  nmt_capabilities: fc.array(fc.record({ model_id: fc.constant('m'), languages: langList, rule }), {
    maxLength: 2,
  }),
});
const FLAGS = Object.keys(FEATURE_EXPANSION);
const entryArb = (id: string): fc.Arbitrary<SnapshotEntry> =>
  fc
    .record({
      lang: langCaps,
      status: fc.constantFrom('ready', 'ready', 'ready', 'registering', 'degraded', 'offline'),
      draining: fc.constantFrom(false, false, false, true),
      gpu: fc.constantFrom(true, true, true, false),
      public: fc.boolean(),
      types: fc.subarray([...SERVICE_TYPES]),
      features: fc.subarray(FLAGS),
      max: fc.integer({ min: 0, max: 4 }),
      running: fc.integer({ min: 0, max: 4 }),
      reserved: fc.integer({ min: 0, max: 2 }),
      cpu: fc.integer({ min: 0, max: 100 }),
      gpuPct: fc.option(fc.integer({ min: 0, max: 100 })),
      mem: fc.integer({ min: 0, max: 100 }),
    })
    .map((r) => node(id, r as Partial<SnapshotEntry>));
const fleetArb = fc
  .integer({ min: 0, max: 40 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => entryArb(`n${i}`))));
const requestArb: fc.Arbitrary<SelectionRequest> = fc.record({
  srcLang: fc.constantFrom('auto', ...LANGS),
  tgtLang: fc.constantFrom(...LANGS),
  pipeline: fc.record({
    asr: fc.boolean(),
    nmt: fc.boolean(),
    tts: fc.boolean(),
    semantic: fc.boolean(),
    tone: fc.boolean(),
  }),
  features: fc.subarray(FLAGS, { maxLength: 2 }),
  routingKey: fc.option(fc.string({ minLength: 1, maxLength: 6 })),
  public: fc.boolean(),
  requireGpu: fc.boolean(),
  autoLangs: fc.option(fc.subarray([...LANGS, 'ZH-Hant', 'auto', 'x:y'])),
  preferredNodeId: fc.option(fc.constantFrom('n0', 'n1', 'n2')),
  excludeNodeIds: fc.subarray(
    Array.from({ length: 12 }, (_, i) => `n${i}`),
    { maxLength: 10 },
  ),
});

describe('select against the reference', () => {
  it('same first failing reason for every node, same counts, consistent samples and ranking', () => {
    fc.assert(
      fc.property(
        fleetArb,
        requestArb,
        fc.constantFrom<SelectionPolicy['strategy']>('p2c', 'least_loaded', 'random'),
        fc.boolean(),
        (entries, req, strategy, affinity) => {
          const known = new Map(
            entries.filter((_, i) => i % 3 === 0).map((e) => [e.id, { running: 1, reserved: 1 }]),
          );
          const pol = policy({
            strategy,
            affinity,
            knownLoad: (id) => known.get(id),
            random: replay(0.3, 0.7),
          });
          const index = fleet(...entries);
          const r = select(index, req, pol);
          checkInvariants(index, r);
          const ref = referenceBreakdown(entries, req, pol);
          expect(r.breakdown.rejected).toEqual(ref.rejected);
          for (const [reason, ids] of Object.entries(r.breakdown.samples))
            for (const id of ids) expect(ref.reasons.get(id)).toBe(reason);
          const eligible = entries.filter((e) => ref.reasons.get(e.id) === null).map((e) => e.id);
          expect(r.breakdown.eligible).toBe(eligible.length);
          const language = new Set<RejectReason>(REJECT_REASONS.slice(0, 5));
          expect(r.breakdown.candidates).toBe(
            entries.filter((e) => {
              const reason = ref.reasons.get(e.id);
              return reason == null || !language.has(reason);
            }).length,
          );
          for (const id of r.ranked) expect(eligible).toContain(id);
          if (req.preferredNodeId && eligible.includes(req.preferredNodeId))
            expect(r.ranked[0]).toBe(req.preferredNodeId);
          else if (affinity && req.routingKey && eligible.length > 0)
            expect(r.ranked[0]).toBe(rendezvousPick(req.routingKey, eligible));
        },
      ),
      { numRuns: 400 },
    );
  });

  it.each([
    ['early', 0, 3],
    ['late', 300, 0],
  ])(
    'samples of index-counted reasons are best effort: a bounded probe (%s in the fleet)',
    (_name, at, found) => {
      const full = Array.from({ length: 300 }, (_, i) => node(`full-${i}`));
      const de = Array.from({ length: 5 }, (_, i) => withLang(`de-${i}`, { asr_languages: ['de'] }));
      const index = fleet(...full.slice(0, at), ...de, ...full.slice(at));
      const r = run(index);
      expect(r.breakdown.rejected).toEqual({ asr_lang_unsupported: 5 });
      const samples = r.breakdown.samples.asr_lang_unsupported ?? [];
      expect(samples).toHaveLength(found);
      for (const id of samples) expect(id).toMatch(/^de-/);
    },
  );
});

describe('select is pure', () => {
  it('does not mutate the request or the index, and repeats itself', () => {
    const index = fleet(...loaded(0, 1, 2), node('off', { status: 'offline' }));
    const req = request({ excludeNodeIds: ['n2'], features: ['persona_adaptation'] });
    const frozen = JSON.stringify(req);
    const a = select(index, req, policy());
    const b = select(index, req, policy());
    expect(JSON.stringify(req)).toBe(frozen);
    expect(b).toEqual(a);
    expect(index.size).toBe(4);
  });
});
