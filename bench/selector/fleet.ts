/**
 * The synthetic fleet of the in-process choice benchmark: capability profiles (language sets,
 * service types, features) with their share of the fleet, and deterministic SnapshotEntry
 * objects with varied status, load and capacity. Seeded: every run builds the same fleet, so
 * two runs' figures compare.
 */
import { languageProfile, pipelinePools, type LanguageCapabilities } from '../../shared/language-pairs.ts';
import type { ServiceType } from '../../shared/protocol/node-messages.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';

export interface CapabilityProfile {
  name: string;
  /** Share of the fleet, per 10,000 nodes. */
  per10k: number;
  types: ServiceType[];
  features: string[];
  lang: LanguageCapabilities;
}

const LANGS_20 = [
  'zh', 'ja', 'ko', 'es', 'fr', 'de', 'it', 'pt', 'ru', 'ar',
  'hi', 'vi', 'th', 'id', 'tr', 'pl', 'nl', 'sv', 'uk', 'he',
]; // prettier-ignore
const M2M_10 = ['en', 'zh', 'ja', 'ko', 'es', 'fr', 'de', 'ru', 'pt', 'ar'];
const FULL: ServiceType[] = ['asr', 'nmt', 'tts'];

/** 12 profiles; per10k sums to 10,000. */
export const PROFILES: CapabilityProfile[] = [
  {
    name: '{zh,en} any_to_any',
    per10k: 1800,
    types: FULL,
    features: [],
    lang: {
      asr_languages: ['zh', 'en'],
      tts_languages: ['zh', 'en'],
      nmt_capabilities: [{ model_id: 'nllb-zh-en', languages: ['zh', 'en'], rule: 'any_to_any' }],
    },
  },
  {
    name: '{en,ja,zh} any_to_any',
    per10k: 1400,
    types: FULL,
    features: ['emotion_detection'],
    lang: {
      asr_languages: ['en', 'ja', 'zh'],
      tts_languages: ['en', 'ja', 'zh'],
      nmt_capabilities: [{ model_id: 'm2m-cjk', languages: ['en', 'ja', 'zh'], rule: 'any_to_any' }],
    },
  },
  {
    name: '{en,es,fr,de} any_to_any',
    per10k: 1100,
    types: FULL,
    features: ['emotion_detection', 'speech_rate_detection'],
    lang: {
      asr_languages: ['en', 'es', 'fr', 'de'],
      tts_languages: ['en', 'es', 'fr', 'de'],
      nmt_capabilities: [{ model_id: 'opus-eu', languages: ['en', 'es', 'fr', 'de'], rule: 'any_to_any' }],
    },
  },
  {
    name: '20 languages any_to_en, TTS en',
    per10k: 900,
    types: FULL,
    features: [],
    lang: {
      asr_languages: [...LANGS_20, 'en'],
      tts_languages: ['en'],
      nmt_capabilities: [{ model_id: 'whisper-x-en', languages: LANGS_20, rule: 'any_to_en' }],
    },
  },
  {
    name: 'ASR en, en_to_any 20 languages',
    per10k: 800,
    types: FULL,
    features: ['speech_rate_control'],
    lang: {
      asr_languages: ['en'],
      tts_languages: ['en', ...LANGS_20],
      nmt_capabilities: [{ model_id: 'nllb-en-x', languages: ['en', ...LANGS_20], rule: 'en_to_any' }],
    },
  },
  {
    name: 'text only: NMT any_to_any over 10',
    per10k: 800,
    types: ['nmt'],
    features: [],
    lang: { nmt_capabilities: [{ model_id: 'm2m-10', languages: M2M_10, rule: 'any_to_any' }] },
  },
  {
    name: '{zh,en} + semantic + tone',
    per10k: 700,
    types: ['asr', 'nmt', 'semantic', 'tone', 'tts'],
    features: ['emotion_detection', 'speaker_identification', 'voice_style_detection', 'persona_adaptation'],
    lang: {
      asr_languages: ['zh', 'en'],
      tts_languages: ['zh', 'en'],
      semantic_languages: ['zh', 'en'],
      nmt_capabilities: [{ model_id: 'nllb-zh-en', languages: ['zh', 'en'], rule: 'any_to_any' }],
    },
  },
  {
    name: 'specific_pairs zh/ja/ko→en, en→zh',
    per10k: 600,
    types: FULL,
    features: [],
    lang: {
      asr_languages: ['zh', 'ja', 'ko', 'en'],
      tts_languages: ['en', 'zh'],
      nmt_capabilities: [
        {
          model_id: 'pairs',
          languages: [],
          rule: 'specific_pairs',
          supported_pairs: [
            { src: 'zh', tgt: 'en' },
            { src: 'ja', tgt: 'en' },
            { src: 'ko', tgt: 'en' },
            { src: 'en', tgt: 'zh' },
          ],
        },
      ],
    },
  },
  {
    name: '{ko,ja,en} any_to_any, ja→ko blocked',
    per10k: 500,
    types: FULL,
    features: [],
    lang: {
      asr_languages: ['ko', 'ja', 'en'],
      tts_languages: ['ko', 'ja', 'en'],
      nmt_capabilities: [
        {
          model_id: 'kja',
          languages: ['ko', 'ja', 'en'],
          rule: 'any_to_any',
          blocked_pairs: [{ src: 'ja', tgt: 'ko' }],
        },
      ],
    },
  },
  {
    name: '{vi,th,id,ms} any_to_en, TTS en/vi',
    per10k: 500,
    types: FULL,
    features: [],
    lang: {
      asr_languages: ['vi', 'th', 'id', 'ms', 'en'],
      tts_languages: ['en', 'vi'],
      nmt_capabilities: [{ model_id: 'sea-en', languages: ['vi', 'th', 'id', 'ms'], rule: 'any_to_en' }],
    },
  },
  {
    name: 'supported_language_pairs zh↔en, zh↔ja',
    per10k: 400,
    types: FULL,
    features: [],
    lang: {
      asr_languages: ['zh', 'en', 'ja'],
      tts_languages: ['zh', 'en', 'ja'],
      supported_language_pairs: [
        { src: 'zh', tgt: 'en' },
        { src: 'en', tgt: 'zh' },
        { src: 'zh', tgt: 'ja' },
        { src: 'ja', tgt: 'zh' },
      ],
    },
  },
  {
    name: 'ASR only {zh,en,ja,ko}',
    per10k: 500,
    types: ['asr'],
    features: ['emotion_detection'],
    lang: { asr_languages: ['zh', 'en', 'ja', 'ko'] },
  },
];

/** mulberry32: a small, fast, seeded PRNG (deterministic fleets and request streams). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How the synthetic entries vary (in % of nodes unless said otherwise). */
export const VARIATION = {
  status: { offline: 3, degraded: 2, registering: 1 },
  draining: 2,
  noGpu: 2,
  notPublic: 10,
  maxJobs: [2, 3, 4, 8],
  /** running + reserved is drawn in 0..max: about 1 in (max+1) nodes is full. */
  cpuRange: [5, 95],
  gpuRange: [10, 95],
  /** gpu_percent not reported. */
  gpuUnreported: 5,
  memRange: [30, 90],
} as const;

export interface SyntheticFleet {
  entries: SnapshotEntry[];
  /** Nodes per profile name. */
  perProfile: Record<string, number>;
}

/** `count` entries, profiles in their per-10k shares (interleaved), loads drawn from `seed`. */
export function syntheticFleet(count: number, seed = 20261122): SyntheticFleet {
  const random = seededRandom(seed);
  const pct = (p: number) => random() * 100 < p;
  const between = ([lo, hi]: readonly [number, number]) => Math.round(lo + random() * (hi - lo));
  // Profile of node i: a deterministic weighted round-robin, so any prefix of the fleet has
  // about the same mix.
  const total = PROFILES.reduce((sum, p) => sum + p.per10k, 0);
  const credit = PROFILES.map(() => 0);
  const perProfile: Record<string, number> = {};
  const entries: SnapshotEntry[] = [];
  const now = Date.now();
  // What the worker's flush would have published: selection takes the pair from it.
  const pools = PROFILES.map((p) => pipelinePools(languageProfile(p.lang)));
  for (let i = 0; i < count; i++) {
    let best = 0;
    for (let k = 0; k < PROFILES.length; k++) {
      credit[k]! += PROFILES[k]!.per10k;
      if (credit[k]! > credit[best]!) best = k;
    }
    credit[best]! -= total;
    const profile = PROFILES[best]!;
    perProfile[profile.name] = (perProfile[profile.name] ?? 0) + 1;
    const r = random() * 100;
    const s = VARIATION.status;
    const status =
      r < s.offline
        ? 'offline'
        : r < s.offline + s.degraded
          ? 'degraded'
          : r < s.offline + s.degraded + s.registering
            ? 'registering'
            : 'ready';
    const max = VARIATION.maxJobs[Math.floor(random() * VARIATION.maxJobs.length)]!;
    const busy = Math.floor(random() * (max + 1));
    const reserved = busy > 0 && pct(30) ? 1 : 0;
    entries.push({
      id: `sel-node-${String(i).padStart(6, '0')}`,
      status,
      draining: pct(VARIATION.draining),
      hb: now - Math.floor(random() * 15_000),
      at: now,
      gpu: !pct(VARIATION.noGpu),
      public: !pct(VARIATION.notPublic),
      types: [...profile.types].sort(),
      features: profile.features,
      lang: profile.lang,
      langDigest: `bench-profile-${best}`,
      pools: pools[best]!,
      max,
      running: busy - reserved,
      reserved,
      cpu: between(VARIATION.cpuRange),
      gpuPct: pct(VARIATION.gpuUnreported) ? null : between(VARIATION.gpuRange),
      mem: between(VARIATION.memRange),
    });
  }
  return { entries, perProfile };
}
