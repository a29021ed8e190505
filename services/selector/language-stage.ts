import { AUTO_LANG, normalizeLang, pairKey, type LanguageProfile } from '../../shared/language-pairs.ts';
import { inUnion, seenBefore, sizeSum, unionSize, type Sets } from './index-unions.ts';
import type { LanguageCheck, Pass } from './node-filters.ts';
import { ASR_LANG, LANG_PAIR, SEMANTIC_LANG, SRC_AUTO, TTS_LANG } from './reject-reasons.ts';
import type { SelectionRequest } from './selection-inputs.ts';
import { ANY_LANGUAGE, type SnapshotIndex } from './snapshot-index.ts';

/**
 * The language stage of a selection: reasons 1–4, answered from the SnapshotIndex where the
 * indexes nest, and the visit of the nodes that remain.
 *
 * Cost. For the pipeline steps in order (ASR, NMT, TTS, semantic), the set P(i) of nodes
 * passing step i and every earlier one is an index set as far as the indexes allow (see
 * langSteps), so reason i counts |P(i-1)| − |P(i)| without touching a node (P(0) = every
 * node). Only the members of the last such set are visited one by one — or those of the next
 * step's own index set when that is smaller (e.g. semantic(src) within the pool) — checking the
 * remaining language steps on the node's LanguageProfile, then reasons 5–14 (node-filters.ts).
 * For ASR+NMT+TTS that is the pool only: O(candidates), not O(fleet).
 */

/** Reasons 1–4 counted from index sizes: at most this many nodes are probed for samples. */
const SAMPLE_PROBE = 64;

/**
 * The candidate sources of src 'auto' the request allows: null = unrestricted; otherwise the
 * usable, normalised, distinct codes (possibly none, which restricts to nothing — as in
 * autoSources of shared/language-pairs.ts).
 */
function autoCandidates(autoLangs: readonly string[] | null | undefined): string[] | null {
  if (autoLangs == null || autoLangs.length === 0) return null;
  const out: string[] = [];
  for (const code of autoLangs) {
    const lang = normalizeLang(code);
    if (lang !== '' && lang !== AUTO_LANG && !lang.includes(':') && !out.includes(lang)) out.push(lang);
  }
  return out;
}

/** One language reason. */
export interface LangStep extends LanguageCheck {
  /**
   * Nodes passing this step AND every earlier one, as an index set — or, for the first step
   * only, a union of index sets; null = not indexable (checked per node).
   */
  prefix: Sets | null;
  /**
   * Nodes that may pass this step alone (every other node fails it), as a union of index sets;
   * lets the first non-indexable step visit the smaller of its own set and the indexed prefix.
   */
  own: Sets | null;
}

/**
 * The language steps of the pipeline, in reason order. Languages per step: ASR and semantic
 * check the source, TTS the target, NMT the directed pair — each step its own language, also
 * without NMT (an ASR+TTS job zh→en without NMT needs ASR zh and TTS en: e.g. a speech model
 * that translates while transcribing). Source 'auto': the candidate sources are the node's ASR
 * languages ∩ autoLangs; without ASR in the pipeline (text jobs), autoLangs or else any
 * language. NMT passes when a candidate s ≠ tgt has s→tgt; semantic when a candidate is a
 * semantic language.
 *
 * Indexes used (P = passes this step and the earlier ones):
 *   ASR        asr(src) | asr('*') for auto | ∪ asr(a), a ∈ autoLangs
 *   +NMT       asrNmt(src:tgt) | asrNmt(auto:tgt)          (with autoLangs: per node)
 *   +TTS       pool(src:tgt)   | pool(auto:tgt)            (with autoLangs: per node)
 *   NMT first  nmt(src:tgt) | ∪ nmt(a:tgt), a ∈ autoLangs  (auto without autoLangs: per node)
 *   TTS first  tts(tgt);  semantic first  semantic(src) | semantic('*') | ∪ semantic(a)
 * A union of several sets is only ever the first step: deduplicating unions costs a lookup per
 * set per member, so later steps over autoLangs are checked on the profile instead (a few
 * lookups in small, shared sets).
 */
export function langSteps(index: SnapshotIndex, req: SelectionRequest): LangStep[] {
  const { asr, nmt, tts, semantic } = req.pipeline;
  const src = req.srcLang;
  const tgt = req.tgtLang;
  const auto = src === AUTO_LANG;
  const cands = auto ? autoCandidates(req.autoLangs) : null;
  const restricted = cands !== null;
  const srcKeys = !auto ? [src] : (cands ?? [ANY_LANGUAGE]);
  /** candidates that can be translated into tgt, and their pair keys */
  const pairSrcs = restricted ? cands.filter((a) => a !== tgt) : [];
  const pairKeys = pairSrcs.map((a) => pairKey(a, tgt));
  const sets = (kind: 'asr' | 'nmt' | 'semantic', keys: string[]): Sets =>
    keys.map((key) => index.index(kind, key));
  const ttsSet = [index.index('tts', tgt)];

  const steps: LangStep[] = [];
  if (asr) {
    steps.push({
      reason: auto ? SRC_AUTO : ASR_LANG,
      prefix: sets('asr', srcKeys),
      own: null,
      check: !auto
        ? (p) => p.asr.has(src)
        : restricted
          ? (p) => cands.some((a) => p.asr.has(a))
          : (p) => p.asr.size > 0,
    });
  }
  if (nmt) {
    const key = pairKey(src, tgt);
    const suffix = `:${tgt}`;
    /** auto, unrestricted: does the node translate some candidate into tgt? */
    const intoTarget = (p: LanguageProfile): boolean => {
      for (const pair of p.nmtPairs) {
        if (pair.endsWith(suffix) && (!asr || p.asr.has(pair.slice(0, pair.length - suffix.length))))
          return true;
      }
      return false;
    };
    steps.push({
      reason: LANG_PAIR,
      prefix: !auto
        ? [index.index(asr ? 'asrNmt' : 'nmt', key)]
        : !restricted
          ? asr
            ? [index.index('asrNmt', pairKey(AUTO_LANG, tgt))]
            : null
          : asr
            ? null
            : sets('nmt', pairKeys),
      own: null,
      check: !auto
        ? (p) => src !== tgt && p.nmtPairs.has(key)
        : !restricted
          ? intoTarget
          : (p) => {
              for (let i = 0; i < pairSrcs.length; i++) {
                if ((!asr || p.asr.has(pairSrcs[i]!)) && p.nmtPairs.has(pairKeys[i]!)) return true;
              }
              return false;
            },
    });
  }
  if (tts) {
    steps.push({
      reason: TTS_LANG,
      prefix:
        asr && nmt && !restricted
          ? [index.index('pool', auto ? pairKey(AUTO_LANG, tgt) : pairKey(src, tgt))]
          : !asr && !nmt
            ? ttsSet
            : null,
      own: ttsSet,
      check: (p) => p.tts.has(tgt),
    });
  }
  if (semantic) {
    const own = sets('semantic', srcKeys);
    steps.push({
      reason: SEMANTIC_LANG,
      prefix: steps.length === 0 ? own : null,
      own,
      check: !auto
        ? (p) => p.semantic.has(src)
        : restricted
          ? (p) => cands.some((a) => (!asr || p.asr.has(a)) && p.semantic.has(a))
          : asr
            ? (p) => {
                for (const s of p.asr) if (p.semantic.has(s)) return true;
                return false;
              }
            : (p) => p.semantic.size > 0,
    });
  }
  // A step after a non-indexable one is not indexable either (its prefix would not nest).
  for (let i = 1; i < steps.length; i++) if (steps[i - 1]!.prefix === null) steps[i]!.prefix = null;
  return steps;
}

/** Counts the nodes of `superset` (size `supersetSize`) outside `prefix` (size `size`) under the step. */
function settle(
  pass: Pass,
  index: SnapshotIndex,
  step: LangStep,
  superset: Sets | null,
  supersetSize: number,
  prefix: Sets,
  size: number,
): void {
  const missing = supersetSize - size;
  if (missing <= 0) return;
  pass.counts[step.reason]! += missing;
  sampleMissing(pass, index, step.reason, superset, prefix);
}

/**
 * Samples of a reason counted from index sizes: members of `superset` (null = every node) not
 * in `subset`. Best effort: probes at most SAMPLE_PROBE nodes, so a reason that holds a small
 * fraction of a large superset may come back with fewer samples (or none).
 */
function sampleMissing(
  pass: Pass,
  index: SnapshotIndex,
  reason: number,
  superset: Sets | null,
  subset: Sets,
): void {
  let probes = 0;
  const probe = (id: string): boolean => {
    if (!inUnion(subset, id) && !pass.sample(reason, id)) return false;
    return ++probes < SAMPLE_PROBE;
  };
  if (superset === null) {
    for (const node of index.all()) if (!probe(node.entry.id)) return;
    return;
  }
  for (let i = 0; i < superset.length; i++) {
    for (const id of superset[i]!) if (!seenBefore(superset, i, id) && !probe(id)) return;
  }
}

/**
 * Runs the language stage on `pass`: counts the reasons of the first `indexed` steps (those
 * with a prefix) from index sizes, then visits the remaining nodes (Pass.visit checks the
 * later steps and reasons 5–14).
 */
export function visitLanguageCandidates(
  pass: Pass,
  index: SnapshotIndex,
  steps: readonly LangStep[],
  indexed: number,
): void {
  const total = index.size;
  // Reasons answered by index sizes: |P(i-1)| − |P(i)|. When the last indexed prefix is a
  // union (first step over autoLangs), its size comes from visiting it.
  let superset: Sets | null = null;
  let supersetSize = total;
  let deferred: { step: LangStep; superset: Sets | null; size: number } | null = null;
  for (let i = 0; i < indexed; i++) {
    const step = steps[i]!;
    const prefix = step.prefix!;
    if (i === indexed - 1 && prefix.length > 1) {
      deferred = { step, superset, size: supersetSize };
      supersetSize = -1;
    } else {
      const size = unionSize(prefix);
      settle(pass, index, step, superset, supersetSize, prefix, size);
      supersetSize = size;
    }
    superset = prefix;
  }

  // Visit the members of the last indexed set (every node when none is indexable) — or, when
  // the next step's own set is smaller, the members of both: the others fail that step.
  const next = steps[indexed];
  const own = next?.own ?? null;
  const estimate = supersetSize >= 0 ? supersetSize : sizeSum(superset!);
  if (next !== undefined && own !== null && sizeSum(own) < estimate) {
    if (deferred !== null) {
      supersetSize = unionSize(superset!);
      settle(pass, index, deferred.step, deferred.superset, deferred.size, superset!, supersetSize);
    }
    let inBoth = 0;
    for (let i = 0; i < own.length; i++) {
      for (const id of own[i]!) {
        if ((i > 0 && seenBefore(own, i, id)) || (superset !== null && !inUnion(superset, id))) continue;
        const node = index.get(id);
        if (node === undefined) continue;
        inBoth++;
        pass.visit(node, id);
      }
    }
    settle(pass, index, next, superset, supersetSize, own, inBoth);
  } else {
    let visited = 0;
    if (superset === null) {
      for (const node of index.all()) pass.visit(node, node.entry.id);
      visited = total;
    } else {
      for (let i = 0; i < superset.length; i++) {
        for (const id of superset[i]!) {
          if (i > 0 && seenBefore(superset, i, id)) continue;
          const node = index.get(id);
          if (node === undefined) continue;
          visited++;
          pass.visit(node, id);
        }
      }
    }
    if (deferred !== null) {
      settle(pass, index, deferred.step, deferred.superset, deferred.size, superset!, visited);
    }
  }
}
