import type { z } from 'zod';
import type { languageCapabilitiesSchema } from './protocol/node-messages.ts';

/**
 * Language rules of PROTOCOL.md "Language codes": code normalisation, the directed NMT pairs a
 * node serves, its full-pipeline pools and the source candidates of `src_lang: "auto"`.
 *
 * Pure and synchronous. `languageProfile` does all the work once per node (on every capability
 * change); the per-selection questions (`servesNmt`, `autoSources`) are then Set lookups.
 * Pairs are keyed "src:tgt" over normalised codes; `src` ≠ `tgt` always.
 *
 * Codes that cannot take part in a pair are dropped wherever they appear in a node's
 * capabilities: those that normalise to '', those containing ':' (the pair-key separator) and
 * `auto` (the job-level "detect the source" sentinel, which is also the `auto:tgt` pool key).
 */

export type LanguageCapabilities = z.infer<typeof languageCapabilitiesSchema>;
type LangPair = { readonly src: string; readonly tgt: string };
type LangList = readonly string[] | null | undefined;
type PairList = readonly LangPair[] | null | undefined;

/** The job-level source sentinel, and the source half of the auto pools. */
export const AUTO_LANG = 'auto';

/** trim, lower-case, '_'→'-', keep the primary subtag (before first '-'), then in→id, iw→he. Empty → ''. */
export function normalizeLang(code: string): string {
  const lower = code.trim().toLowerCase().replaceAll('_', '-');
  const dash = lower.indexOf('-');
  const primary = dash === -1 ? lower : lower.slice(0, dash);
  if (primary === 'in') return 'id';
  if (primary === 'iw') return 'he';
  return primary;
}

/** Directed pair key "src:tgt" (both normalised) — the form of `nmtPairs` and of the pools. */
export function pairKey(src: string, tgt: string): string {
  return `${src}:${tgt}`;
}

export interface LanguageProfile {
  /** normalised ASR languages */
  asr: ReadonlySet<string>;
  tts: ReadonlySet<string>;
  semantic: ReadonlySet<string>;
  /**
   * directed NMT pairs "src:tgt" the node serves (src ≠ tgt), after blocked pairs; or from
   * supported_language_pairs when present and non-empty (it REPLACES the NMT rules); with
   * neither, asr_languages × semantic_languages (the lingua scheduler's derivation)
   */
  nmtPairs: ReadonlySet<string>;
}

/** Normalised code, or '' when it cannot take part in a pair (see module comment). */
function usable(code: string): string {
  const lang = normalizeLang(code);
  return lang === AUTO_LANG || lang.includes(':') ? '' : lang;
}

function langSet(codes: LangList): Set<string> {
  const out = new Set<string>();
  for (const code of codes ?? []) {
    const lang = usable(code);
    if (lang !== '') out.add(lang);
  }
  return out;
}

/** Thrown by a BoundedSet that would grow past its limit. */
class PairLimitExceeded extends Error {}

/** A set of pair keys that refuses to grow past `limit` (the work stops at once). */
class BoundedSet extends Set<string> {
  constructor(private readonly limit: number) {
    super();
  }
  override add(key: string): this {
    super.add(key);
    if (this.size > this.limit) throw new PairLimitExceeded();
    return this;
  }
}

/**
 * True when the capabilities derive more than `limit` directed NMT pairs. Stops counting at
 * `limit + 1`, so the cost is bounded whatever the lists hold: at most 64 entries × 128² pair
 * checks (PROTOCOL.md "Limits").
 */
export function derivedPairsExceed(caps: LanguageCapabilities, limit: number): boolean {
  try {
    nmtPairSet(caps, new BoundedSet(limit));
    return false;
  } catch (err) {
    if (err instanceof PairLimitExceeded) return true;
    throw err;
  }
}

/** Adds the pair when both codes are usable and differ. */
function addPair(out: Set<string>, src: string, tgt: string): void {
  const s = usable(src);
  const t = usable(tgt);
  if (s !== '' && t !== '' && s !== t) out.add(pairKey(s, t));
}

function pairSet(pairs: PairList, out = new Set<string>()): Set<string> {
  for (const { src, tgt } of pairs ?? []) addPair(out, src, tgt);
  return out;
}

type NmtCapability = NonNullable<LanguageCapabilities['nmt_capabilities']>[number];

/** Adds the pairs one `nmt_capabilities` entry serves, minus that entry's own blocked pairs. */
function addEntryPairs(out: Set<string>, entry: NmtCapability): void {
  const blocked = pairSet(entry.blocked_pairs);
  const add = (key: string): void => {
    if (!blocked.has(key)) out.add(key);
  };
  const langs = langSet(entry.languages);
  switch (entry.rule) {
    case 'any_to_any':
      for (const s of langs) for (const t of langs) if (s !== t) add(pairKey(s, t));
      return;
    case 'any_to_en':
      for (const s of langs) if (s !== 'en') add(pairKey(s, 'en'));
      return;
    case 'en_to_any':
      for (const t of langs) if (t !== 'en') add(pairKey('en', t));
      return;
    case 'specific_pairs':
      for (const key of pairSet(entry.supported_pairs)) add(key);
      return;
  }
}

/**
 * supported_language_pairs when non-empty; else the `nmt_capabilities` rules when there are
 * any; else (a node that sends no NMT rules, like the lingua client at its head) the pairs the
 * lingua scheduler derives: asr_languages × semantic_languages, src ≠ tgt.
 */
function nmtPairSet(caps: LanguageCapabilities, out = new Set<string>()): Set<string> {
  const explicit = caps.supported_language_pairs;
  if (explicit != null && explicit.length > 0) return pairSet(explicit, out);
  const rules = caps.nmt_capabilities ?? [];
  if (rules.length > 0) {
    for (const entry of rules) addEntryPairs(out, entry);
    return out;
  }
  for (const src of caps.asr_languages ?? []) {
    for (const tgt of caps.semantic_languages ?? []) addPair(out, src, tgt);
  }
  return out;
}

/** Everything the selector needs about a node's languages, computed once per capability change. */
export function languageProfile(caps: LanguageCapabilities | null | undefined): LanguageProfile {
  return {
    asr: langSet(caps?.asr_languages),
    tts: langSet(caps?.tts_languages),
    semantic: langSet(caps?.semantic_languages),
    nmtPairs: caps == null ? new Set<string>() : nmtPairSet(caps),
  };
}

/** Does the node serve src→tgt by NMT? (normalised inputs) */
export function servesNmt(p: LanguageProfile, src: string, tgt: string): boolean {
  return src !== tgt && p.nmtPairs.has(pairKey(src, tgt));
}

/**
 * Full-pipeline pools (ASR src ∩ NMT src→tgt ∩ TTS tgt) as directed pairs "src:tgt", plus
 * "auto:tgt" when some ASR language s ≠ tgt has s→tgt served and tgt is a TTS language.
 * Sorted, deduplicated. O(|nmtPairs|).
 */
export function pipelinePools(p: LanguageProfile): string[] {
  const pools = new Set<string>();
  for (const key of p.nmtPairs) {
    const colon = key.indexOf(':');
    const src = key.slice(0, colon);
    const tgt = key.slice(colon + 1);
    if (p.asr.has(src) && p.tts.has(tgt)) {
      pools.add(key);
      // The auto condition for tgt is exactly "some full pool src:tgt exists".
      pools.add(pairKey(AUTO_LANG, tgt));
    }
  }
  return [...pools].sort();
}

/**
 * src_lang "auto": candidate sources = ASR languages (∩ autoLangs when given, normalised);
 * returns the candidates s ≠ tgt with s→tgt served, sorted. `tgt` is normalised here too.
 * autoLangs null, absent or empty means "no restriction" (like supported_language_pairs, an
 * empty list is "not given"); a non-empty list restricts, even when none of its codes is usable.
 */
export function autoSources(p: LanguageProfile, tgt: string, autoLangs?: readonly string[] | null): string[] {
  const target = normalizeLang(tgt);
  const candidates = autoLangs != null && autoLangs.length > 0 ? langSet(autoLangs) : p.asr;
  const out: string[] = [];
  for (const s of candidates) {
    if (p.asr.has(s) && servesNmt(p, s, target)) out.push(s);
  }
  return out.sort();
}
