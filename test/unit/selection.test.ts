import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SwitchboardError } from '../../shared/errors.ts';
import {
  autoSources,
  languageProfile,
  normalizeLang,
  servesNmt,
  type LanguageCapabilities,
} from '../../shared/language-pairs.ts';
import { SERVICE_TYPES, type ServiceType } from '../../shared/protocol/node-messages.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import {
  FEATURE_EXPANSION,
  UnknownFeatureError,
  expandFeatures,
  validateFeatures,
} from '../../services/selector/feature-expansion.ts';
import { rendezvousPick } from '../../services/selector/rendezvous.ts';
import {
  MAX_RANKED,
  REJECT_REASONS,
  requiredServiceTypes,
  select,
  type RejectReason,
  type SelectionPolicy,
  type SelectionRequest,
  type SelectionResult,
} from '../../services/selector/selection.ts';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures

/** A ready, idle, public GPU node serving zh↔en (+ja ASR) with every type and no feature flag. */
function node(id: string, over: Partial<SnapshotEntry> = {}): SnapshotEntry {
  return {
    id,
    status: 'ready',
    draining: false,
    hb: 1,
    at: 1,
    gpu: true,
    public: true,
    types: [...SERVICE_TYPES],
    features: [],
    lang: {
      asr_languages: ['zh', 'en', 'ja'],
      tts_languages: ['zh', 'en'],
      semantic_languages: ['zh'],
      nmt_capabilities: [{ model_id: 'm', languages: ['zh', 'en'], rule: 'any_to_any' }],
    },
    langDigest: '',
    pools: [],
    max: 4,
    running: 0,
    reserved: 0,
    cpu: 10,
    gpuPct: 10,
    mem: 10,
    ...over,
  };
}

const withLang = (id: string, lang: LanguageCapabilities, over: Partial<SnapshotEntry> = {}): SnapshotEntry =>
  node(id, { lang, ...over });

function fleet(...entries: SnapshotEntry[]): SnapshotIndex {
  const index = new SnapshotIndex();
  for (const e of entries) index.upsert(e, 0);
  return index;
}

const FULL = { asr: true, nmt: true, tts: true, semantic: false, tone: false };

function request(over: Partial<SelectionRequest> = {}): SelectionRequest {
  return {
    srcLang: 'zh',
    tgtLang: 'en',
    pipeline: FULL,
    features: [],
    routingKey: null,
    public: true,
    requireGpu: true,
    autoLangs: null,
    preferredNodeId: null,
    excludeNodeIds: [],
    ...over,
  };
}

function policy(over: Partial<SelectionPolicy> = {}): SelectionPolicy {
  return { strategy: 'least_loaded', resourceThreshold: 85, affinity: true, ...over };
}

function run(
  index: SnapshotIndex,
  req: Partial<SelectionRequest> = {},
  pol: Partial<SelectionPolicy> = {},
): SelectionResult {
  return select(index, request(req), policy(pol));
}

/** The invariants every result keeps. */
function checkInvariants(index: SnapshotIndex, r: SelectionResult): void {
  const b = r.breakdown;
  const rejected = Object.values(b.rejected).reduce((sum, n) => sum + n, 0);
  expect(b.total_nodes).toBe(index.size);
  expect(b.eligible + rejected).toBe(b.total_nodes);
  expect(b.candidates).toBeGreaterThanOrEqual(b.eligible);
  for (const [reason, ids] of Object.entries(b.samples)) {
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length).toBeLessThanOrEqual(3);
    expect(new Set(ids).size).toBe(ids.length);
    expect(b.rejected[reason as RejectReason]).toBeGreaterThanOrEqual(ids.length);
  }
  for (const n of Object.values(b.rejected)) expect(n).toBeGreaterThan(0);
  expect(r.ranked.length).toBe(Math.min(b.eligible, MAX_RANKED));
  expect(new Set(r.ranked).size).toBe(r.ranked.length);
  expect(r.choice === null).toBe(r.ranked.length === 0);
}

// ---------------------------------------------------------------------------------------------
// Reference: the contract written naively, one node at a time (O(fleet)), to check the indexed
// arithmetic against.

function referenceReason(e: SnapshotEntry, req: SelectionRequest, pol: SelectionPolicy): RejectReason | null {
  const p = languageProfile(e.lang);
  const { srcLang: s, tgtLang: t } = req;
  const { asr, nmt, tts, semantic, tone } = req.pipeline;
  const auto = s === 'auto';
  const given = req.autoLangs != null && req.autoLangs.length > 0;
  const usable = (c: string): boolean => c !== '' && c !== 'auto' && !c.includes(':');
  const givenLangs = given ? [...new Set(req.autoLangs!.map(normalizeLang).filter(usable))] : [];
  /** candidate sources for auto; null = any language (no ASR, no autoLangs) */
  const cands: string[] | null = !auto
    ? [s]
    : asr
      ? (given ? givenLangs : [...p.asr]).filter((c) => p.asr.has(c))
      : given
        ? givenLangs
        : null;
  if (asr && (auto ? cands!.length === 0 : !p.asr.has(s)))
    return auto ? 'src_auto_no_candidate' : 'asr_lang_unsupported';
  if (nmt) {
    const ok = !auto
      ? servesNmt(p, s, t)
      : asr
        ? autoSources(p, t, req.autoLangs).length > 0
        : cands === null
          ? [...p.nmtPairs].some((k) => k.endsWith(`:${t}`))
          : cands.some((c) => servesNmt(p, c, t));
    if (!ok) return 'lang_pair_unsupported';
  }
  if (tts && !p.tts.has(t)) return 'tts_lang_unsupported';
  if (semantic && !(cands === null ? p.semantic.size > 0 : cands.some((c) => p.semantic.has(c))))
    return 'semantic_lang_unsupported';
  if (e.status === 'offline') return 'offline';
  if (e.status !== 'ready') return 'status_not_ready';
  if (e.draining) return 'draining';
  if ((e.quarantinedUntil ?? 0) > Date.now()) return 'quarantined';
  if (req.requireGpu && !e.gpu) return 'gpu_unavailable';
  if (req.public && !e.public) return 'not_accepting_public';
  const types = new Set<ServiceType>();
  for (const [on, type] of [
    [asr, 'asr'],
    [nmt, 'nmt'],
    [tts, 'tts'],
    [semantic, 'semantic'],
    [tone, 'tone'],
  ] as const)
    if (on) types.add(type);
  for (const f of req.features) {
    const type = FEATURE_EXPANSION[f as keyof typeof FEATURE_EXPANSION].type;
    if (type) types.add(type);
  }
  if ([...types].some((type) => !e.types.includes(type))) return 'model_not_available';
  if (req.features.some((f) => !e.features.includes(f))) return 'feature_unsupported';
  if (req.excludeNodeIds.includes(e.id)) return 'excluded';
  const known = pol.knownLoad?.(e.id);
  const running = Math.max(e.running, known?.running ?? 0);
  const reserved = Math.max(e.reserved, known?.reserved ?? 0);
  if (running + reserved >= e.max) return 'capacity_exceeded';
  const th = pol.resourceThreshold;
  if (e.cpu >= th || (e.gpuPct !== null && e.gpuPct >= th) || e.mem >= th)
    return 'resource_threshold_exceeded';
  return null;
}

function referenceBreakdown(
  entries: SnapshotEntry[],
  req: SelectionRequest,
  pol: SelectionPolicy,
): { reasons: Map<string, RejectReason | null>; rejected: Partial<Record<RejectReason, number>> } {
  const reasons = new Map<string, RejectReason | null>();
  const rejected: Partial<Record<RejectReason, number>> = {};
  for (const e of entries) {
    const reason = referenceReason(e, req, pol);
    reasons.set(e.id, reason);
    if (reason) rejected[reason] = (rejected[reason] ?? 0) + 1;
  }
  return { reasons, rejected };
}

// ---------------------------------------------------------------------------------------------
// Reasons and their order

/** Makes a node (or the request) fail one reason of the zh→en full pipeline + semantic + tone. */
type Breaker = (e: SnapshotEntry, req: SelectionRequest) => void;
const BREAK: Record<RejectReason, Breaker> = {
  asr_lang_unsupported: (e) => {
    e.lang = { ...e.lang, asr_languages: ['en'] };
  },
  src_auto_no_candidate: (e) => {
    e.lang = { ...e.lang, asr_languages: [] };
  },
  lang_pair_unsupported: (e) => {
    e.lang = { ...e.lang, nmt_capabilities: [] };
  },
  tts_lang_unsupported: (e) => {
    e.lang = { ...e.lang, tts_languages: ['zh'] };
  },
  semantic_lang_unsupported: (e) => {
    e.lang = { ...e.lang, semantic_languages: ['ja'] };
  },
  offline: (e) => {
    e.status = 'offline';
  },
  status_not_ready: (e) => {
    if (e.status !== 'offline') e.status = 'degraded';
  },
  draining: (e) => {
    e.draining = true;
  },
  quarantined: (e) => {
    e.quarantinedUntil = Date.now() + 60_000;
    e.quarantineReason = 'job_failed';
  },
  gpu_unavailable: (e) => {
    e.gpu = false;
  },
  not_accepting_public: (e) => {
    e.public = false;
  },
  model_not_available: (e) => {
    e.types = e.types.filter((t) => t !== 'tone');
  },
  feature_unsupported: (e) => {
    e.features = [];
  },
  excluded: (e, req) => {
    req.excludeNodeIds.push(e.id);
  },
  capacity_exceeded: (e) => {
    e.running = e.max;
  },
  resource_threshold_exceeded: (e) => {
    e.cpu = 99;
  },
};

/** Reasons reachable for a request with a concrete source (src_auto_no_candidate needs 'auto'). */
const CONCRETE_REASONS = REJECT_REASONS.filter((r) => r !== 'src_auto_no_candidate');

function orderFixture(breaks: readonly RejectReason[]): {
  index: SnapshotIndex;
  req: SelectionRequest;
} {
  const req = request({
    pipeline: { ...FULL, semantic: true, tone: true },
    features: ['persona_adaptation'],
  });
  const good = node('good', { features: ['persona_adaptation'] });
  const bad = node('bad', { features: ['persona_adaptation'] });
  for (const reason of breaks) BREAK[reason](bad, req);
  return { index: fleet(good, bad), req };
}

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

// ---------------------------------------------------------------------------------------------
// Features and service types

describe('features', () => {
  it('the expansion table covers every node flag', () => {
    expect(Object.keys(FEATURE_EXPANSION).sort()).toEqual(
      Object.values(FEATURE_EXPANSION)
        .map((r) => r.flag)
        .sort(),
    );
  });

  it.each<[string[], string[], ServiceType[]]>([
    [['emotion_detection'], ['emotion_detection'], ['asr']],
    [['speech_rate_detection'], ['speech_rate_detection'], ['asr']],
    [['speaker_identification'], ['speaker_identification'], ['tone']],
    [['voice_style_detection'], ['voice_style_detection'], ['tone']],
    [['speech_rate_control'], ['speech_rate_control'], ['tts']],
    [['persona_adaptation'], ['persona_adaptation'], []],
    [
      ['speaker_identification', 'voice_style_detection', 'speaker_identification'],
      ['speaker_identification', 'voice_style_detection'],
      ['tone'],
    ],
  ])('expandFeatures(%j)', (names, flags, types) => {
    expect(expandFeatures(names)).toEqual({ flags, types });
  });

  it.each([[['nope']], [['emotion_detection', 'constructor']], [['__proto__']], [['toString']]])(
    'an unknown feature %j throws a 400 error naming it',
    (names) => {
      const call = (): unknown => validateFeatures(names);
      expect(call).toThrow(UnknownFeatureError);
      try {
        call();
      } catch (err) {
        expect(err).toBeInstanceOf(SwitchboardError);
        expect((err as SwitchboardError).status).toBe(400);
        expect((err as SwitchboardError).code).toBe('INVALID_MESSAGE');
        expect((err as UnknownFeatureError).unknown).toEqual(names.filter((n) => n !== 'emotion_detection'));
      }
      expect(() => run(fleet(node('a')), { features: names })).toThrow(UnknownFeatureError);
    },
  );

  it.each<[Partial<SelectionRequest>, ServiceType[]]>([
    [{}, ['asr', 'nmt', 'tts']],
    [{ pipeline: { asr: false, nmt: true, tts: false, semantic: false, tone: false } }, ['nmt']],
    [{ pipeline: { ...FULL, semantic: true, tone: true } }, ['asr', 'nmt', 'tts', 'semantic', 'tone']],
    [
      {
        pipeline: { asr: false, nmt: true, tts: false, semantic: false, tone: false },
        features: ['emotion_detection', 'speaker_identification', 'persona_adaptation'],
      },
      ['nmt', 'asr', 'tone'],
    ],
  ])('requiredServiceTypes(%j)', (req, types) => {
    expect(requiredServiceTypes(request(req))).toEqual(types);
  });

  it.each<[string, string[], Partial<SnapshotEntry>, RejectReason | null]>([
    ['flag present, type ready', ['speaker_identification'], { features: ['speaker_identification'] }, null],
    [
      'flag missing',
      ['speaker_identification'],
      { features: ['voice_style_detection'] },
      'feature_unsupported',
    ],
    [
      'type missing (tone not ready) comes before the flag',
      ['speaker_identification'],
      { types: ['asr', 'nmt', 'tts'], features: [] },
      'model_not_available',
    ],
    [
      'type missing, flag present',
      ['voice_style_detection'],
      { types: ['asr', 'nmt', 'tts'], features: ['voice_style_detection'] },
      'model_not_available',
    ],
    [
      'flag only feature',
      ['persona_adaptation'],
      { types: ['asr', 'nmt', 'tts'], features: [] },
      'feature_unsupported',
    ],
    [
      'flag only feature present',
      ['persona_adaptation'],
      { types: ['asr', 'nmt', 'tts'], features: ['persona_adaptation'] },
      null,
    ],
  ])('%s', (_name, features, over, reason) => {
    const index = fleet(node('n', over));
    const r = run(index, { features });
    checkInvariants(index, r);
    expect(r.breakdown.rejected).toEqual(reason ? { [reason]: 1 } : {});
  });

  it('a feature type joins the pipeline: emotion_detection on a text job needs ASR ready', () => {
    const text = { asr: false, nmt: true, tts: false, semantic: false, tone: false };
    const index = fleet(
      node('nmt-only', { types: ['nmt'], features: ['emotion_detection'] }),
      node('both', { types: ['asr', 'nmt'], features: ['emotion_detection'] }),
    );
    const r = run(index, { pipeline: text, features: ['emotion_detection'] });
    expect(r.breakdown.rejected).toEqual({ model_not_available: 1 });
    expect(r.ranked).toEqual(['both']);
  });
});

// ---------------------------------------------------------------------------------------------
// Per-node reasons

describe('select: node state', () => {
  it.each<[string, Partial<SnapshotEntry>, Partial<SelectionRequest>, RejectReason | null]>([
    ['gpu required, none', { gpu: false }, {}, 'gpu_unavailable'],
    ['gpu not required', { gpu: false }, { requireGpu: false }, null],
    ['public job, node refuses', { public: false }, {}, 'not_accepting_public'],
    ['private job, node refuses public', { public: false }, { public: false }, null],
    ['draining', { draining: true }, {}, 'draining'],
    ['registering', { status: 'registering' }, {}, 'status_not_ready'],
    ['degraded', { status: 'degraded' }, {}, 'status_not_ready'],
    ['offline and draining', { status: 'offline', draining: true }, {}, 'offline'],
  ])('%s', (_name, over, req, reason) => {
    const index = fleet(node('n', over));
    const r = run(index, req);
    expect(r.breakdown.rejected).toEqual(reason ? { [reason]: 1 } : {});
  });

  it.each([[['b']], [['x', 'y', 'b']], [Array.from({ length: 20 }, (_, i) => (i === 13 ? 'b' : `x${i}`))]])(
    'excluded %j',
    (excludeNodeIds) => {
      const index = fleet(node('a'), node('b'));
      const r = run(index, { excludeNodeIds });
      expect(r.breakdown.rejected).toEqual({ excluded: 1 });
      expect(r.breakdown.samples).toEqual({ excluded: ['b'] });
      expect(r.ranked).toEqual(['a']);
    },
  );

  it.each<[string, Partial<SnapshotEntry>, { running: number; reserved: number } | undefined, boolean]>([
    ['idle', {}, undefined, true],
    ['snapshot full by running', { running: 4 }, undefined, false],
    ['snapshot full by running + reserved', { running: 2, reserved: 2 }, undefined, false],
    ['snapshot 3/4', { running: 2, reserved: 1 }, undefined, true],
    ['known reservations fill it', { running: 1 }, { running: 0, reserved: 3 }, false],
    ['known running fills it', { reserved: 1 }, { running: 3, reserved: 0 }, false],
    ['known lower than snapshot: the snapshot counts', { running: 3 }, { running: 1, reserved: 0 }, true],
    // max per count, not a sum: a reservation of ours that the snapshot already shows counts once
    ['known = snapshot counts once', { running: 1, reserved: 2 }, { running: 1, reserved: 2 }, true],
    ['max 0 never takes a job', { max: 0 }, undefined, false],
  ])('capacity: %s', (_name, over, known, ok) => {
    const index = fleet(node('n', over));
    const r = run(index, {}, { knownLoad: (id) => (id === 'n' ? known : undefined) });
    expect(r.breakdown.rejected).toEqual(ok ? {} : { capacity_exceeded: 1 });
  });

  it.each<[string, Partial<SnapshotEntry>, number, boolean]>([
    ['below', { cpu: 84, gpuPct: 84, mem: 84 }, 85, true],
    ['cpu at threshold', { cpu: 85 }, 85, false],
    ['gpu at threshold', { gpuPct: 85 }, 85, false],
    ['mem over', { mem: 99 }, 85, false],
    ['gpu not reported', { gpuPct: null }, 85, true],
    ['gpu not reported, cpu over', { gpuPct: null, cpu: 90 }, 85, false],
    ['custom threshold', { cpu: 60 }, 50, false],
  ])('resource threshold: %s', (_name, over, threshold, ok) => {
    const index = fleet(node('n', over));
    const r = run(index, {}, { resourceThreshold: threshold });
    expect(r.breakdown.rejected).toEqual(ok ? {} : { resource_threshold_exceeded: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
// Choice

/** Nodes n0..n(k-1) with running = the given loads (max 4). */
const loaded = (...running: number[]): SnapshotEntry[] =>
  running.map((r, i) => node(`n${i}`, { running: r, gpuPct: 10 }));

/** A random source replaying the given values. */
const replay = (...values: number[]): (() => number) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

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
