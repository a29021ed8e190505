import { describe, expect, it } from 'vitest';
import {
  autoSources,
  languageProfile,
  normalizeLang,
  pairKey,
  pipelinePools,
  servesNmt,
  type LanguageCapabilities,
} from '../../shared/language-pairs.ts';
import { languageCapabilitiesSchema } from '../../shared/protocol/node-messages.ts';

type Nmt = NonNullable<LanguageCapabilities['nmt_capabilities']>[number];
type Pair = { src: string; tgt: string };

const pairs = (...keys: string[]): Pair[] =>
  keys.map((k) => {
    const [src = '', tgt = ''] = k.split(':');
    return { src, tgt };
  });

const entry = (rule: Nmt['rule'], languages: string[], extra: Partial<Nmt> = {}): Nmt => ({
  model_id: `m-${rule}`,
  languages,
  rule,
  ...extra,
});

/** Sorted NMT pairs of a node with only these NMT capabilities. */
const nmt = (caps: LanguageCapabilities | null | undefined): string[] =>
  [...languageProfile(caps).nmtPairs].sort();

describe('normalizeLang', () => {
  it.each([
    ['en', 'en'],
    ['EN', 'en'],
    [' zh ', 'zh'],
    ['zh-Hant', 'zh'],
    ['ZH_cn', 'zh'],
    ['zh-Hant-TW', 'zh'],
    ['pt-BR', 'pt'],
    ['es_MX', 'es'],
    ['\tde-AT\n', 'de'],
    ['in', 'id'],
    ['IN-ID', 'id'],
    ['iw', 'he'],
    ['iw_IL', 'he'],
    ['id', 'id'],
    ['he', 'he'],
    ['ind', 'ind'],
    ['', ''],
    ['   ', ''],
    ['-US', ''],
    ['_', ''],
  ])('%j → %j', (code, expected) => {
    expect(normalizeLang(code)).toBe(expected);
  });

  it('is idempotent', () => {
    for (const code of ['zh-Hant', ' IW_il ', 'in', 'pt-BR', '']) {
      const once = normalizeLang(code);
      expect(normalizeLang(once)).toBe(once);
    }
  });
});

describe('languageProfile: ASR / TTS / semantic sets', () => {
  it('normalises, deduplicates and drops unusable codes', () => {
    const p = languageProfile({
      asr_languages: ['zh-Hant', 'ZH_cn', ' zh ', 'EN', 'in', '', '  ', 'auto', 'x:y'],
      tts_languages: ['iw', 'he-IL', 'ja'],
      semantic_languages: ['pt-BR', 'pt_PT'],
    });
    expect([...p.asr].sort()).toEqual(['en', 'id', 'zh']);
    expect([...p.tts].sort()).toEqual(['he', 'ja']);
    expect([...p.semantic]).toEqual(['pt']);
  });

  it.each<[string, LanguageCapabilities | null | undefined]>([
    ['null capabilities', null],
    ['absent capabilities', undefined],
    ['empty object', {}],
    [
      'all fields null',
      {
        asr_languages: null,
        tts_languages: null,
        semantic_languages: null,
        nmt_capabilities: null,
        supported_language_pairs: null,
      },
    ],
  ])('%s → empty profile', (_name, caps) => {
    const p = languageProfile(caps);
    expect(p.asr.size + p.tts.size + p.semantic.size + p.nmtPairs.size).toBe(0);
    expect(pipelinePools(p)).toEqual([]);
    expect(autoSources(p, 'en')).toEqual([]);
    expect(servesNmt(p, 'en', 'zh')).toBe(false);
  });

  it('accepts what the wire schema parses (null optional fields)', () => {
    const caps = languageCapabilitiesSchema.parse({
      asr_languages: ['en'],
      tts_languages: null,
      nmt_capabilities: [
        {
          model_id: 'm',
          languages: ['en', 'de'],
          rule: 'any_to_any',
          blocked_pairs: null,
          supported_pairs: null,
        },
      ],
      supported_language_pairs: null,
    });
    expect([...languageProfile(caps).nmtPairs].sort()).toEqual(['de:en', 'en:de']);
  });
});

describe('NMT rules', () => {
  it.each<[string, Nmt[], string[]]>([
    [
      'any_to_any: every ordered pair of distinct languages',
      [entry('any_to_any', ['en', 'de', 'fr'])],
      ['de:en', 'de:fr', 'en:de', 'en:fr', 'fr:de', 'fr:en'],
    ],
    ['any_to_any with one language: nothing', [entry('any_to_any', ['en'])], []],
    ['any_to_any with duplicates after normalisation', [entry('any_to_any', ['zh-Hant', 'zh_CN', 'ZH'])], []],
    ['any_to_en: into en only', [entry('any_to_en', ['de', 'fr'])], ['de:en', 'fr:en']],
    ['any_to_en: en itself gives no en:en', [entry('any_to_en', ['en', 'de'])], ['de:en']],
    ['en_to_any: out of en only', [entry('en_to_any', ['de', 'fr'])], ['en:de', 'en:fr']],
    ['en_to_any: en itself gives no en:en', [entry('en_to_any', ['EN-us', 'de'])], ['en:de']],
    [
      'specific_pairs: exactly its supported_pairs, directed',
      [entry('specific_pairs', ['en', 'de', 'fr'], { supported_pairs: pairs('en:de', 'fr:en') })],
      ['en:de', 'fr:en'],
    ],
    [
      'specific_pairs: pairs normalised, self and empty pairs dropped',
      [
        entry('specific_pairs', [], {
          supported_pairs: pairs('zh-Hant:EN_us', 'en:en', 'zh:zh-TW', ':de', 'in:iw'),
        }),
      ],
      ['id:he', 'zh:en'],
    ],
    ['specific_pairs without supported_pairs: nothing', [entry('specific_pairs', ['en', 'de'])], []],
    [
      'supported_pairs is ignored by the other rules',
      [entry('any_to_en', ['de'], { supported_pairs: pairs('ja:ko') })],
      ['de:en'],
    ],
    [
      'union over entries',
      [
        entry('any_to_en', ['de']),
        entry('en_to_any', ['ja']),
        entry('specific_pairs', [], { supported_pairs: pairs('ko:zh') }),
      ],
      ['de:en', 'en:ja', 'ko:zh'],
    ],
    [
      'languages normalised before the rule',
      [entry('any_to_en', ['En-GB', 'zh_Hant', 'in'])],
      ['id:en', 'zh:en'],
    ],
  ])('%s', (_name, entries, expected) => {
    expect(nmt({ nmt_capabilities: entries })).toEqual(expected);
  });

  it('regression: {en, ja, zh} any_to_any serves en→zh (directed pairs, not set matches)', () => {
    const p = languageProfile({ nmt_capabilities: [entry('any_to_any', ['en', 'ja', 'zh'])] });
    expect(servesNmt(p, 'en', 'zh')).toBe(true);
    expect(servesNmt(p, 'zh', 'en')).toBe(true);
    expect(servesNmt(p, 'ja', 'zh')).toBe(true);
    expect(p.nmtPairs.size).toBe(6);
  });

  it.each([
    ['en', 'en'],
    ['zh', 'zh'],
    ['de', 'de'],
  ])('src = tgt is never served: %s→%s', (src, tgt) => {
    const p = languageProfile({
      nmt_capabilities: [
        entry('any_to_any', ['en', 'zh', 'de']),
        entry('specific_pairs', [], { supported_pairs: pairs('de:de', 'zh-Hant:zh') }),
      ],
    });
    expect(servesNmt(p, src, tgt)).toBe(false);
    expect(p.nmtPairs.has(pairKey(src, tgt))).toBe(false);
  });

  it('handles ~100 languages any_to_any (n·(n−1) pairs)', () => {
    const langs = Array.from({ length: 100 }, (_, i) => `l${i}`);
    const p = languageProfile({ nmt_capabilities: [entry('any_to_any', langs)] });
    expect(p.nmtPairs.size).toBe(100 * 99);
    expect(servesNmt(p, 'l3', 'l97')).toBe(true);
  });
});

describe('blocked pairs', () => {
  it.each<[string, Nmt[], string[]]>([
    [
      'any_to_any minus blocked (directed: the reverse stays)',
      [entry('any_to_any', ['en', 'de', 'fr'], { blocked_pairs: pairs('en:de', 'fr:en') })],
      ['de:en', 'de:fr', 'en:fr', 'fr:de'],
    ],
    [
      'blocked codes are normalised',
      [entry('any_to_any', ['en', 'zh'], { blocked_pairs: pairs(' EN_us :zh-Hant') })],
      ['zh:en'],
    ],
    [
      'any_to_en minus blocked',
      [entry('any_to_en', ['de', 'fr'], { blocked_pairs: pairs('de:en') })],
      ['fr:en'],
    ],
    [
      'en_to_any minus blocked',
      [entry('en_to_any', ['de', 'fr'], { blocked_pairs: pairs('en:fr') })],
      ['en:de'],
    ],
    [
      'specific_pairs minus blocked',
      [
        entry('specific_pairs', [], {
          supported_pairs: pairs('en:de', 'de:en'),
          blocked_pairs: pairs('de:en'),
        }),
      ],
      ['en:de'],
    ],
    [
      'a pair blocked in one entry is still served by another',
      [entry('any_to_any', ['en', 'de'], { blocked_pairs: pairs('en:de') }), entry('en_to_any', ['de'])],
      ['de:en', 'en:de'],
    ],
    [
      'a block in one entry does not remove another entry’s pair (order does not matter)',
      [
        entry('specific_pairs', [], { supported_pairs: pairs('en:de') }),
        entry('any_to_any', ['en', 'de'], { blocked_pairs: pairs('en:de') }),
      ],
      ['de:en', 'en:de'],
    ],
    [
      'blocked pairs outside the entry change nothing',
      [entry('any_to_en', ['de'], { blocked_pairs: pairs('ja:ko', 'en:en') })],
      ['de:en'],
    ],
  ])('%s', (_name, entries, expected) => {
    expect(nmt({ nmt_capabilities: entries })).toEqual(expected);
  });
});

describe('supported_language_pairs', () => {
  const rules = [entry('any_to_any', ['en', 'de', 'fr'])];

  it.each<[string, Pair[] | null | undefined, string[]]>([
    ['non-empty: replaces the NMT rules', pairs('en:ja', 'ZH_cn:en'), ['en:ja', 'zh:en']],
    ['non-empty: self and empty pairs dropped', pairs('en:ja', 'ja:ja-JP', 'en: '), ['en:ja']],
    ['non-empty but nothing usable: serves nothing', pairs('en:en'), []],
    ['empty list: the rules apply', [], ['de:en', 'de:fr', 'en:de', 'en:fr', 'fr:de', 'fr:en']],
    ['null: the rules apply', null, ['de:en', 'de:fr', 'en:de', 'en:fr', 'fr:de', 'fr:en']],
    ['absent: the rules apply', undefined, ['de:en', 'de:fr', 'en:de', 'en:fr', 'fr:de', 'fr:en']],
  ])('%s', (_name, supported, expected) => {
    expect(nmt({ nmt_capabilities: rules, supported_language_pairs: supported })).toEqual(expected);
  });

  it('applies without any nmt_capabilities', () => {
    expect(nmt({ supported_language_pairs: pairs('en:zh') })).toEqual(['en:zh']);
  });
});

describe('pipelinePools', () => {
  it.each<[string, LanguageCapabilities, string[]]>([
    [
      'intersects ASR src, NMT src→tgt and TTS tgt',
      {
        asr_languages: ['en', 'zh'],
        tts_languages: ['en', 'ja'],
        nmt_capabilities: [entry('any_to_any', ['en', 'ja', 'zh'])],
      },
      ['auto:en', 'auto:ja', 'en:ja', 'zh:en', 'zh:ja'],
    ],
    [
      'regression: {en, ja, zh} everywhere gives en:zh among six directed pools',
      {
        asr_languages: ['en', 'ja', 'zh'],
        tts_languages: ['en', 'ja', 'zh'],
        nmt_capabilities: [entry('any_to_any', ['en', 'ja', 'zh'])],
      },
      ['auto:en', 'auto:ja', 'auto:zh', 'en:ja', 'en:zh', 'ja:en', 'ja:zh', 'zh:en', 'zh:ja'],
    ],
    [
      'no TTS language: no pools',
      { asr_languages: ['en', 'de'], nmt_capabilities: [entry('any_to_any', ['en', 'de'])] },
      [],
    ],
    [
      'no ASR language: no pools',
      { tts_languages: ['en', 'de'], nmt_capabilities: [entry('any_to_any', ['en', 'de'])] },
      [],
    ],
    ['no NMT: no pools (no same-language pool either)', { asr_languages: ['en'], tts_languages: ['en'] }, []],
    [
      'auto:tgt needs a served s→tgt with s an ASR language',
      {
        asr_languages: ['de'],
        tts_languages: ['en', 'fr'],
        nmt_capabilities: [entry('specific_pairs', [], { supported_pairs: pairs('de:en', 'it:fr') })],
      },
      ['auto:en', 'de:en'],
    ],
    [
      'ASR language = tgt alone does not make auto:tgt',
      {
        asr_languages: ['en'],
        tts_languages: ['en'],
        nmt_capabilities: [entry('any_to_en', ['de'])],
      },
      [],
    ],
    [
      'codes normalised across fields',
      {
        asr_languages: ['zh-Hant'],
        tts_languages: ['EN_us'],
        nmt_capabilities: [entry('any_to_en', ['ZH_cn'])],
      },
      ['auto:en', 'zh:en'],
    ],
    [
      'uses supported_language_pairs when it replaces the rules',
      {
        asr_languages: ['en', 'de'],
        tts_languages: ['en', 'de'],
        nmt_capabilities: [entry('any_to_any', ['en', 'de'])],
        supported_language_pairs: pairs('en:de'),
      },
      ['auto:de', 'en:de'],
    ],
  ])('%s', (_name, caps, expected) => {
    expect(pipelinePools(languageProfile(caps))).toEqual(expected);
  });
});

describe('autoSources', () => {
  const p = languageProfile({
    asr_languages: ['en', 'de', 'zh-Hant', 'ja'],
    nmt_capabilities: [
      entry('any_to_en', ['de', 'zh', 'fr']),
      entry('specific_pairs', [], { supported_pairs: pairs('en:ja') }),
    ],
  });

  it.each<[string, string, readonly string[] | null | undefined, string[]]>([
    ['all ASR candidates with s→tgt served (absent autoLangs)', 'en', undefined, ['de', 'zh']],
    ['null autoLangs: no restriction', 'en', null, ['de', 'zh']],
    ['empty autoLangs: no restriction', 'en', [], ['de', 'zh']],
    ['autoLangs restricts the candidates', 'en', ['zh'], ['zh']],
    ['autoLangs normalised', 'en', ['ZH_tw', 'de-AT'], ['de', 'zh']],
    ['autoLangs outside ASR are not candidates (fr has NMT but no ASR)', 'en', ['fr', 'de'], ['de']],
    ['autoLangs with no usable code: no candidates', 'en', ['', ' auto '], []],
    ['s = tgt is excluded', 'ja', undefined, ['en']],
    ['tgt normalised', 'EN-gb', undefined, ['de', 'zh']],
    ['nothing served into tgt', 'ko', undefined, []],
    ['autoLangs with no overlap', 'en', ['ko'], []],
  ])('%s', (_name, tgt, autoLangs, expected) => {
    expect(autoSources(p, tgt, autoLangs)).toEqual(expected);
  });

  it('is consistent with the auto pools', () => {
    const q = languageProfile({
      asr_languages: ['en', 'ja', 'zh'],
      tts_languages: ['en', 'ja', 'zh'],
      nmt_capabilities: [entry('any_to_any', ['en', 'ja', 'zh'])],
    });
    for (const tgt of ['en', 'ja', 'zh']) {
      expect(autoSources(q, tgt).length > 0).toBe(pipelinePools(q).includes(`auto:${tgt}`));
    }
  });
});
