import {
  AUTO_LANG,
  languageProfile,
  pairKey,
  pipelinePools,
  type LanguageProfile,
} from '../../shared/language-pairs.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';

/**
 * Index kinds, each mapping a key to the ids of the nodes that have it:
 *  pool     "src:tgt" | "auto:tgt" — full pipeline, AS THE WORKER'S FLUSH PUBLISHED IT
 *           (entry.pools, shared/snapshot-entry.ts); an offline node, which the worker
 *           keeps in no pool, is indexed under the pools its languages give (shared
 *           language-pairs.ts), so that the breakdown still counts it as `offline`
 *  asrNmt   "src:tgt" | "auto:tgt" — ASR src and NMT src→tgt (pipelines without TTS)
 *  nmt      "src:tgt" | "*:tgt"     — NMT src→tgt; "*:tgt": some source into tgt
 *  asr | tts | semantic   language  — "*" = has at least one language of that kind
 *  asrSemantic  "*"                 — some language is both ASR and semantic
 *  type     service type            — reported ready
 *  feature  feature flag            — supported
 * Nesting the language stage relies on: asrNmt ⊆ asr(src) and asrNmt ⊆ nmt(src:tgt); pool ⊆
 * asrNmt when the worker's pools agree with the entry's languages (not while a capability
 * change waits for its re-index: selection then takes the intersection, language-stage.ts).
 */
export type IndexKind =
  'pool' | 'asrNmt' | 'nmt' | 'asr' | 'tts' | 'semantic' | 'asrSemantic' | 'type' | 'feature';

export const ANY_LANGUAGE = '*';

/** What a node's languages give the index (snapshot-index.ts). */
export interface Derived {
  /** unique per derivation (index-sets.ts groups nodes by it) */
  id: number;
  profile: LanguageProfile;
  /** its keys in the language kinds (nmt, asrNmt, asr, tts, semantic, asrSemantic) */
  keys: [IndexKind, string][];
  /** the pools the languages give: used for offline nodes only */
  pools: string[];
}

const CACHE_LIMIT = 10_000;

/** The language keys of entries, derived once per language digest (or language JSON without one). */
export class LangKeys {
  private readonly cache = new Map<string, Derived>();
  private derivations = 0;

  of(entry: SnapshotEntry): Derived {
    const cacheKey = entry.langDigest || JSON.stringify(entry.lang);
    const hit = this.cache.get(cacheKey);
    if (hit) return hit;
    const profile = languageProfile(entry.lang);
    const keys: [IndexKind, string][] = [];
    const autoTargets = new Set<string>();
    const intoTargets = new Set<string>();
    for (const pair of profile.nmtPairs) {
      keys.push(['nmt', pair]);
      const [src, tgt] = pair.split(':') as [string, string];
      intoTargets.add(tgt);
      if (profile.asr.has(src)) {
        keys.push(['asrNmt', pair]);
        autoTargets.add(tgt);
      }
    }
    for (const tgt of intoTargets) keys.push(['nmt', pairKey(ANY_LANGUAGE, tgt)]);
    for (const tgt of autoTargets) keys.push(['asrNmt', pairKey(AUTO_LANG, tgt)]);
    for (const [kind, langs] of [
      ['asr', profile.asr],
      ['tts', profile.tts],
      ['semantic', profile.semantic],
    ] as const) {
      for (const lang of langs) keys.push([kind, lang]);
      if (langs.size > 0) keys.push([kind, ANY_LANGUAGE]);
    }
    for (const lang of profile.asr) {
      if (profile.semantic.has(lang)) {
        keys.push(['asrSemantic', ANY_LANGUAGE]);
        break;
      }
    }
    const d = { id: ++this.derivations, profile, keys, pools: pipelinePools(profile) };
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(cacheKey, d);
    return d;
  }
}
