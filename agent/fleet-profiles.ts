import type { ServiceType } from '../shared/protocol/node-messages.ts';
import type { RegistrationBody } from './protocol.ts';

/** What a simulated node can translate (docs/PROTOCOL.md "Language codes" for the NMT rules). */
export interface LanguageProfile {
  name: string;
  asr: string[];
  tts: string[];
  nmt: { rule: 'any_to_any' | 'any_to_en' | 'en_to_any'; languages: string[] };
}

const profile = (
  name: string,
  rule: LanguageProfile['nmt']['rule'],
  languages: string[],
  tts = languages,
): LanguageProfile => ({ name, asr: languages, tts, nmt: { rule, languages } });

/** The built-in profiles, by name. */
export const LANGUAGE_PROFILES: Record<string, LanguageProfile> = {
  'zh-en': profile('zh-en', 'any_to_any', ['zh', 'en']),
  'en-ja-zh': profile('en-ja-zh', 'any_to_any', ['en', 'ja', 'zh']),
  'en-es-fr-de': profile('en-es-fr-de', 'any_to_any', ['en', 'es', 'fr', 'de']),
  'any-to-en': profile(
    'any-to-en',
    'any_to_en',
    ['zh', 'ja', 'ko', 'es', 'fr', 'de', 'ru', 'pt', 'it', 'ar', 'en'],
    ['en'],
  ),
};

/** Default mix: name → weight. */
export const DEFAULT_PROFILE_MIX: Record<string, number> = {
  'zh-en': 3,
  'en-ja-zh': 2,
  'en-es-fr-de': 2,
  'any-to-en': 1,
};

/**
 * Parses `zh-en:3,any-to-en:1` (weight defaults to 1). A custom profile is a `+`-joined language
 * list, any_to_any among them: `en+ko:2`.
 */
export function parseProfileMix(text: string): { item: LanguageProfile; weight: number }[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [name = '', weightText] = entry.split(':');
      const weight = weightText === undefined ? 1 : Number(weightText);
      if (!Number.isFinite(weight) || weight < 0) throw new Error(`profile ${entry}: bad weight`);
      const known = LANGUAGE_PROFILES[name];
      if (known) return { item: known, weight };
      const langs = name.split('+').filter(Boolean);
      if (langs.length < 2) {
        throw new Error(
          `unknown profile "${name}" (known: ${Object.keys(LANGUAGE_PROFILES).join(', ')}; or languages joined by +)`,
        );
      }
      return { item: profile(name, 'any_to_any', langs), weight };
    });
}

export interface NodeShape {
  nodeId: string;
  profile: LanguageProfile;
  services: ServiceType[];
  gpu: { name: string; memory_gb: number } | null;
  cpuCores: number;
  memoryGb: number;
  maxJobs: number;
}

const MODEL_OF: Record<string, string> = {
  asr: 'whisper-large-v3',
  nmt: 'm2m100-1.2b',
  tts: 'vits-multi',
  tone: 'tone-v1',
  semantic: 'semantic-v1',
};
const modelOf = (type: ServiceType): string => MODEL_OF[type] ?? `${type}-v1`;

/** The `node_register` body of a simulated node. */
export function simulatedRegistration(shape: NodeShape): RegistrationBody {
  const device = shape.gpu ? 'gpu' : 'cpu';
  const has = (t: ServiceType) => shape.services.includes(t);
  return {
    node_id: shape.nodeId,
    version: 'sim-1.0.0',
    capability_schema_version: '2.0',
    platform: 'linux',
    hardware: {
      cpu_cores: shape.cpuCores,
      memory_gb: shape.memoryGb,
      gpus: shape.gpu ? [shape.gpu] : [],
    },
    installed_models: shape.services
      .filter((t) => t === 'asr' || t === 'nmt' || t === 'tts')
      .map((t) => ({ model_id: modelOf(t), kind: t, version: '1' })),
    installed_services: shape.services.map((type) => ({
      service_id: `${type}-1`,
      type,
      device,
      status: 'running' as const,
      version: '1.0',
      model_id: modelOf(type),
    })),
    capability_by_type: shape.services.map((type) => ({ type, ready: true })),
    features_supported: { emotion_detection: has('asr'), speech_rate_detection: has('asr') },
    accept_public_jobs: true,
    language_capabilities: {
      asr_languages: has('asr') ? shape.profile.asr : [],
      tts_languages: has('tts') ? shape.profile.tts : [],
      semantic_languages: has('semantic') ? shape.profile.asr : null,
      nmt_capabilities: has('nmt') ? [{ model_id: modelOf('nmt'), ...shape.profile.nmt }] : [],
    },
    max_concurrent_jobs: shape.maxJobs,
  };
}
