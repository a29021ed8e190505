import { AUTO_LANG, normalizeLang, pairKey } from '../../shared/language-pairs.ts';
import { andBits, andCountBits, forEachInOrder, hasBit, orBits, type Bits } from './bitset.ts';
import type { Pass } from './node-filters.ts';
import { ASR_LANG, LANG_PAIR, SEMANTIC_LANG, SRC_AUTO, TTS_LANG } from './reject-reasons.ts';
import type { SelectionRequest } from './selection-inputs.ts';
import { ANY_LANGUAGE, type IndexSet, type SnapshotIndex } from './snapshot-index.ts';

/**
 * The language stage of a selection: reasons 1–5 over bit sets of the SnapshotIndex.
 *
 * For the pipeline steps in order (ASR, NMT, TTS, semantic), P(i) = the nodes passing step i
 * and every earlier one = P(i-1) ∧ pass(i), with pass(i) a union of intersections of index
 * sets (never a per-node check), so reason i counts |P(i-1)| − |P(i)| by popcount. The steps
 * the indexes answer in one set (their `prefix`, see langSteps) settle first; the nodes left
 * (that prefix, or the part of it in the next step's own set when that set is smaller) are
 * the VISIT: the later steps and reasons 6–16 are masks over it (node-filters.ts), and every
 * sample is taken in visit order — the order of a walk of the index Sets, so counts, samples
 * and the eligible order are those of a node-by-node walk. For ASR+NMT+TTS, pass(TTS) is the
 * worker's pool (snapshot-index.ts), so the pair decision is the worker's; while its pools lag
 * a capability change, a node is a candidate only where the pool and the languages agree.
 */

/** Reasons counted from a prefix: at most this many nodes are probed for samples. */
const SAMPLE_PROBE = 64;

type Sets = readonly IndexSet[];

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
export interface LangStep {
  reason: number;
  /**
   * Nodes passing this step AND every earlier one, as an index set — or, for the first step
   * only, a union of index sets; null = not answered by one set (a mask over the visit).
   */
  prefix: Sets | null;
  /**
   * Nodes that may pass this step alone (every other node fails it), as a union of index sets;
   * lets the first step without a prefix visit the smaller of its own set and the prefix.
   */
  own: Sets | null;
  /** Nodes passing this step alone: the union of the terms, each the intersection of its sets. */
  pass: Sets[];
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
 * Prefixes (P = passes this step and the earlier ones):
 *   ASR        asr(src) | asr('*') for auto | ∪ asr(a), a ∈ autoLangs
 *   +NMT       asrNmt(src:tgt) | asrNmt(auto:tgt)          (with autoLangs: none)
 *   +TTS       pool(src:tgt)   | pool(auto:tgt)            (with autoLangs: none)
 *   NMT first  nmt(src:tgt) | ∪ nmt(a:tgt), a ∈ autoLangs  (auto without autoLangs: none)
 *   TTS first  tts(tgt);  semantic first  semantic(src) | semantic('*') | ∪ semantic(a)
 * Passes without a prefix: NMT ∪ asrNmt(a:tgt) (ASR, autoLangs) | nmt('*:tgt') (no ASR, any
 * source); TTS tts(tgt); semantic semantic(src) | asrSemantic('*') (ASR, any source) |
 * semantic('*') | ∪ (asr(a) ∧) semantic(a).
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
  const pairKeys = restricted ? cands.filter((a) => a !== tgt).map((a) => pairKey(a, tgt)) : [];
  const sets = (kind: 'asr' | 'nmt' | 'asrNmt' | 'semantic', keys: string[]): Sets =>
    keys.map((key) => index.index(kind, key));
  const terms = (s: Sets): Sets[] => s.map((set) => [set]);
  const ttsSet = [index.index('tts', tgt)];

  const steps: LangStep[] = [];
  if (asr) {
    const prefix = sets('asr', srcKeys);
    steps.push({ reason: auto ? SRC_AUTO : ASR_LANG, prefix, own: null, pass: terms(prefix) });
  }
  if (nmt) {
    const key = pairKey(src, tgt);
    const prefix: Sets | null = !auto
      ? [index.index(asr ? 'asrNmt' : 'nmt', key)]
      : !restricted
        ? asr
          ? [index.index('asrNmt', pairKey(AUTO_LANG, tgt))]
          : null
        : asr
          ? null
          : sets('nmt', pairKeys);
    const pass: Sets[] =
      prefix !== null
        ? terms(prefix)
        : !restricted
          ? [[index.index('nmt', pairKey(ANY_LANGUAGE, tgt))]]
          : terms(sets('asrNmt', pairKeys));
    steps.push({ reason: LANG_PAIR, prefix, own: null, pass });
  }
  if (tts) {
    const prefix =
      asr && nmt && !restricted
        ? [index.index('pool', auto ? pairKey(AUTO_LANG, tgt) : pairKey(src, tgt))]
        : !asr && !nmt
          ? ttsSet
          : null;
    steps.push({ reason: TTS_LANG, prefix, own: ttsSet, pass: terms(prefix ?? ttsSet) });
  }
  if (semantic) {
    const own = sets('semantic', srcKeys);
    const pass: Sets[] = !auto
      ? terms(own)
      : restricted
        ? cands.map((a) =>
            asr ? [index.index('asr', a), index.index('semantic', a)] : [index.index('semantic', a)],
          )
        : asr
          ? [[index.index('asrSemantic', ANY_LANGUAGE)]]
          : terms(own);
    steps.push({ reason: SEMANTIC_LANG, prefix: steps.length === 0 ? own : null, own, pass });
  }
  // A step after one without a prefix has none either (its prefix would not nest).
  for (let i = 1; i < steps.length; i++) if (steps[i - 1]!.prefix === null) steps[i]!.prefix = null;
  return steps;
}

function sizeSum(sets: Sets): number {
  let n = 0;
  for (const set of sets) n += set.size;
  return n;
}

/** The union of index sets as bits: the set's own bits when one, else written into `out`. */
function unionBits(index: SnapshotIndex, sets: Sets, out: Bits, nw: number): Bits {
  if (sets.length === 0) return index.zero;
  if (sets.length === 1) return index.bits(sets[0]!);
  orBits(out, index.bits(sets[0]!), index.bits(sets[1]!), nw);
  for (let i = 2; i < sets.length; i++) orBits(out, out, index.bits(sets[i]!), nw);
  return out;
}

/** pass(step) as bits: the union of its terms (intersections); `out` and `tmp` are scratch. */
export function passBits(index: SnapshotIndex, step: LangStep, out: Bits, tmp: Bits, nw: number): Bits {
  const t = step.pass;
  if (t.length === 1 && t[0]!.length === 1) return index.bits(t[0]![0]!);
  out.fill(0, 0, nw);
  for (const term of t) {
    let bits = term.length === 0 ? index.zero : index.bits(term[0]!);
    if (term.length > 1) {
      bits = andBits(tmp, bits, index.bits(term[1]!), nw);
      for (let i = 2; i < term.length; i++) andBits(tmp, tmp, index.bits(term[i]!), nw);
    }
    orBits(out, out, bits, nw);
  }
  return out;
}

/** Visit order of a union of index sets (null: every node, in slot order). */
function orderOf(index: SnapshotIndex, sets: Sets | null): Bits[] | null {
  return sets === null ? null : sets.map((set) => index.bits(set));
}

/**
 * Samples of a reason counted from sizes: members of the superset (`superset` in its order,
 * `supersetBits` its members) not in `subsetBits`. Best effort: probes at most SAMPLE_PROBE
 * nodes, so a reason that holds a small fraction of a large superset may come back with fewer
 * samples (or none).
 */
function sampleMissing(
  pass: Pass,
  index: SnapshotIndex,
  reason: number,
  superset: Sets | null,
  supersetBits: Bits,
  subsetBits: Bits,
): void {
  let probes = 0;
  forEachInOrder(orderOf(index, superset), supersetBits, index.words, (slot) => {
    if (!hasBit(subsetBits, slot) && !pass.sample(reason, index.idAt(slot))) return false;
    return ++probes < SAMPLE_PROBE;
  });
}

/**
 * Runs the language stage on `pass`: settles the steps with a prefix (`indexed` of them), then
 * hands the visit (its members and order) with the remaining steps to Pass.filter.
 */
export function visitLanguageCandidates(
  pass: Pass,
  index: SnapshotIndex,
  steps: readonly LangStep[],
  indexed: number,
): void {
  const nw = index.words;
  // The last prefix is written where the visit's members go (scratch 3), saving a copy.
  const last = index.scratchBits(3);
  let cum: Bits = index.live;
  let cumSize = index.size;
  let superset: Sets | null = null;
  for (let i = 0; i < indexed; i++) {
    const step = steps[i]!;
    const prefix = step.prefix!;
    const out = i === indexed - 1 ? last : index.scratchBits(i % 2);
    const size = andCountBits(out, cum, unionBits(index, prefix, index.scratchBits(2), nw), nw);
    if (cumSize > size) {
      pass.counts[step.reason]! += cumSize - size;
      sampleMissing(pass, index, step.reason, superset, cum, out);
    }
    cum = out;
    cumSize = size;
    superset = prefix;
  }

  // Visit the members of the last prefix (every node when none) — or, when the next step's
  // own set is smaller, the members of both, in the own set's order: the others fail that step.
  const next = steps[indexed];
  const own = next?.own ?? null;
  const estimate = superset !== null && superset.length > 1 ? sizeSum(superset) : cumSize;
  if (next !== undefined && own !== null && sizeSum(own) < estimate) {
    const ownBits = unionBits(index, own, index.scratchBits(4), nw);
    // cum is sampled after the filter has consumed the visit: the visit goes elsewhere
    const rem = index.scratchBits(cum === last ? 10 : 3);
    const inBoth = andCountBits(rem, cum, ownBits, nw);
    pass.filter(index, rem, inBoth, orderOf(index, own), steps.slice(indexed));
    if (cumSize > inBoth) {
      pass.counts[next.reason]! += cumSize - inBoth;
      sampleMissing(pass, index, next.reason, superset, cum, ownBits);
    }
  } else {
    if (cum !== last) last.set(cum.subarray(0, nw));
    pass.filter(index, last, cumSize, orderOf(index, superset), steps.slice(indexed));
  }
}
