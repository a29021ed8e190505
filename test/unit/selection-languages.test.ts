import { describe, expect, it } from 'vitest';
import type { RejectReason, SelectionRequest } from '../../services/selector/selection.ts';
import { FULL, node, withLang, fleet, run, checkInvariants } from '../support/selection-fixtures.ts';

// ---------------------------------------------------------------------------------------------
// Languages and pipelines

describe('select: languages', () => {
  const NODES = ['full', 'asr-ja', 'ja-en', 'nmt-only', 'tts-en', 'nothing'] as const;
  const index = fleet(
    node('full'), // asr zh/en/ja, tts zh/en, semantic zh, nmt zh↔en
    withLang('asr-ja', { asr_languages: ['ja'], tts_languages: ['en'] }),
    withLang('ja-en', {
      asr_languages: ['ja'],
      tts_languages: ['en'],
      semantic_languages: ['ja'],
      nmt_capabilities: [{ model_id: 'm', languages: ['ja'], rule: 'any_to_en' }],
    }),
    withLang('nmt-only', {
      nmt_capabilities: [{ model_id: 'm', languages: ['zh', 'en', 'de'], rule: 'any_to_any' }],
    }),
    withLang('tts-en', { tts_languages: ['en'] }),
    withLang('nothing', {}),
  );
  const CODES: Record<string, RejectReason | null> = {
    ok: null,
    asr: 'asr_lang_unsupported',
    auto: 'src_auto_no_candidate',
    pair: 'lang_pair_unsupported',
    tts: 'tts_lang_unsupported',
    sem: 'semantic_lang_unsupported',
  };
  const only = (on: Partial<SelectionRequest['pipeline']>): SelectionRequest['pipeline'] => ({
    asr: false,
    nmt: false,
    tts: false,
    semantic: false,
    tone: false,
    ...on,
  });

  // expected: the first failing reason of each node, in NODES order
  //                                                                     full asr-ja ja-en nmt-only tts-en nothing
  it.each<[string, Partial<SelectionRequest>, string]>([
    ['full pipeline zh→en', {}, 'ok asr asr asr asr asr'],
    ['full pipeline ja→en', { srcLang: 'ja' }, 'pair pair ok asr asr asr'],
    ['auto→en, no autoLangs', { srcLang: 'auto' }, 'ok pair ok auto auto auto'],
    [
      'auto→en, autoLangs [ja] (full: ASR ja, no ja→en)',
      { srcLang: 'auto', autoLangs: ['ja'] },
      'pair pair ok auto auto auto',
    ],
    [
      'auto→en, autoLangs [zh, de]',
      { srcLang: 'auto', autoLangs: ['zh', 'de'] },
      'ok auto auto auto auto auto',
    ],
    [
      'auto→en, autoLangs [en]: a candidate = tgt translates nothing',
      { srcLang: 'auto', autoLangs: ['en'] },
      'pair auto auto auto auto auto',
    ],
    [
      'auto→en, autoLangs of no usable code restricts to nothing',
      { srcLang: 'auto', autoLangs: ['auto'] },
      'auto auto auto auto auto auto',
    ],
    [
      'ASR only (transcription): tgt ignored',
      { srcLang: 'ja', tgtLang: 'de', pipeline: only({ asr: true }) },
      'ok ok ok asr asr asr',
    ],
    ['NMT only (text) zh→en', { pipeline: only({ nmt: true }) }, 'ok pair pair ok pair pair'],
    [
      'NMT only, auto→en: any source into en',
      { srcLang: 'auto', pipeline: only({ nmt: true }) },
      'ok pair ok ok pair pair',
    ],
    [
      'NMT only, auto→en, autoLangs [de]',
      { srcLang: 'auto', autoLangs: ['de'], pipeline: only({ nmt: true }) },
      'pair pair pair ok pair pair',
    ],
    ['NMT+TTS zh→en', { pipeline: only({ nmt: true, tts: true }) }, 'ok pair pair tts pair pair'],
    [
      'TTS only: the target language',
      { srcLang: 'de', pipeline: only({ tts: true }) },
      'ok ok ok tts ok tts',
    ],
    [
      'ASR+TTS without NMT: ASR src, TTS tgt',
      { srcLang: 'ja', pipeline: only({ asr: true, tts: true }) },
      'ok ok ok asr asr asr',
    ],
    [
      'ASR+NMT ja→en',
      { srcLang: 'ja', pipeline: only({ asr: true, nmt: true }) },
      'pair pair ok asr asr asr',
    ],
    ['full + semantic zh→en', { pipeline: { ...FULL, semantic: true } }, 'ok asr asr asr asr asr'],
    [
      'full + semantic ja→en: semantic on the source',
      { srcLang: 'ja', pipeline: { ...FULL, semantic: true } },
      'pair pair ok asr asr asr',
    ],
    [
      'full + semantic, auto: a candidate is semantic',
      { srcLang: 'auto', pipeline: { ...FULL, semantic: true } },
      'ok pair ok auto auto auto',
    ],
    [
      'semantic only, auto: any semantic language',
      { srcLang: 'auto', pipeline: only({ semantic: true }) },
      'ok sem ok sem sem sem',
    ],
    ['semantic only zh', { pipeline: only({ semantic: true }) }, 'ok sem sem sem sem sem'],
    [
      'ASR+semantic, auto, autoLangs [ja, de]: a candidate must be both',
      { srcLang: 'auto', autoLangs: ['ja', 'de'], pipeline: only({ asr: true, semantic: true }) },
      'sem sem ok auto auto auto',
    ],
    [
      'TTS+semantic (semantic visited from its own, smaller set)',
      { pipeline: only({ tts: true, semantic: true }) },
      'ok sem sem tts sem tts',
    ],
    ['no pipeline step: every node is a language candidate', { pipeline: only({}) }, 'ok ok ok ok ok ok'],
    [
      'src = tgt with NMT: nobody translates a language into itself',
      { srcLang: 'en' },
      'pair asr asr asr asr asr',
    ],
  ])('%s', (_name, req, codes) => {
    // Every node has every type ready, so only the language reasons differ.
    const expected = new Map(codes.split(' ').map((code, i) => [NODES[i]!, CODES[code]!]));
    expect(expected.size).toBe(NODES.length);
    const r = run(index, req);
    checkInvariants(index, r);
    const rejected: Partial<Record<RejectReason, number>> = {};
    for (const reason of expected.values()) if (reason) rejected[reason] = (rejected[reason] ?? 0) + 1;
    const eligible = NODES.filter((id) => expected.get(id) === null);
    expect(r.breakdown.rejected).toEqual(rejected);
    expect(r.breakdown.eligible).toBe(eligible.length);
    expect(r.breakdown.candidates).toBe(eligible.length);
    expect([...r.ranked].sort()).toEqual([...eligible].sort());
    for (const [reason, ids] of Object.entries(r.breakdown.samples))
      for (const id of ids) expect(expected.get(id as (typeof NODES)[number])).toBe(reason);
    expect(r.pool).toBe(`${req.srcLang ?? 'zh'}:${req.tgtLang ?? 'en'}`);
  });
});

describe('select: visiting a smaller per-node set', () => {
  it('a node in several of the semantic sets of autoLangs is visited once', () => {
    const asrOnly = { asr_languages: ['zh', 'ja'], tts_languages: ['en'] };
    const index = fleet(
      ...Array.from({ length: 10 }, (_, i) => withLang(`plain-${i}`, asrOnly)),
      withLang('both-1', { ...asrOnly, semantic_languages: ['zh', 'ja'] }),
      withLang('both-2', { ...asrOnly, semantic_languages: ['ja', 'zh'] }),
      withLang('ja-only', { ...asrOnly, semantic_languages: ['ja'] }, { status: 'offline' }),
    );
    const pipeline = { asr: true, nmt: false, tts: false, semantic: true, tone: false };
    const r = run(index, { srcLang: 'auto', autoLangs: ['zh', 'ja'], pipeline });
    checkInvariants(index, r);
    expect(r.breakdown).toMatchObject({
      total_nodes: 13,
      candidates: 3,
      eligible: 2,
      rejected: { semantic_lang_unsupported: 10, offline: 1 },
    });
    expect([...r.ranked].sort()).toEqual(['both-1', 'both-2']);
  });
});
