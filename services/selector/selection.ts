import { AUTO_LANG, normalizeLang, pairKey, type LanguageProfile } from '../../shared/language-pairs.ts';
import type { ServiceType } from '../../shared/protocol/node-messages.ts';
import { expandFeatures, type FeatureFlag } from './feature-expansion.ts';
import { rendezvousBeats, rendezvousScore, rendezvousSeed } from './rendezvous.ts';
import { ANY_LANGUAGE, type ReplicaNode, type SnapshotIndex } from './snapshot-index.ts';

/**
 * Node selection (ARCHITECTURE.md "Selection"): pure and synchronous, over the selector's
 * in-memory SnapshotIndex. No I/O; the reservation that follows is the caller's.
 *
 * Filters run in the documented order and a node is counted once, under its FIRST failing
 * reason, so `eligible + Σ rejected = total_nodes`; `candidates` = nodes passing 1–4.
 *
 * Cost. The language reasons (1–4) are answered from the indexes where they nest: for the
 * pipeline steps in order (ASR, NMT, TTS, semantic), the set P(i) of nodes passing step i and
 * every earlier one is an index set as far as the indexes allow (see langSteps), so reason i
 * counts |P(i-1)| − |P(i)| without touching a node (P(0) = every node). Only the members of
 * the last such set are visited one by one — or those of the next step's own index set when
 * that is smaller (e.g. semantic(src) within the pool) — checking the remaining language steps
 * on the node's LanguageProfile, then reasons 5–14. For ASR+NMT+TTS that is the pool only:
 * O(candidates), not O(fleet). No per-node allocation; the eligible list lives in module-level
 * scratch arrays reused across calls (selection is synchronous).
 */

// The feature API the HTTP layer needs, re-exported so that selection is its one entry point.
export { UnknownFeatureError, validateFeatures } from './feature-expansion.ts';

export const REJECT_REASONS = [
  'asr_lang_unsupported',
  'src_auto_no_candidate',
  'lang_pair_unsupported',
  'tts_lang_unsupported',
  'semantic_lang_unsupported',
  'offline',
  'status_not_ready',
  'draining',
  'gpu_unavailable',
  'not_accepting_public',
  'model_not_available',
  'feature_unsupported',
  'excluded',
  'capacity_exceeded',
  'resource_threshold_exceeded',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

const ASR_LANG = 0;
const SRC_AUTO = 1;
const LANG_PAIR = 2;
const TTS_LANG = 3;
const SEMANTIC_LANG = 4;
const OFFLINE = 5;
const NOT_READY = 6;
const DRAINING = 7;
const NO_GPU = 8;
const NOT_PUBLIC = 9;
const NO_MODEL = 10;
const NO_FEATURE = 11;
const EXCLUDED = 12;
const CAPACITY = 13;
const RESOURCES = 14;

/** Eligible nodes returned for the reservation-conflict retry, the chosen one included. */
export const MAX_RANKED = 8;
/** Reasons 1–4 counted from index sizes: at most this many nodes are probed for samples. */
const SAMPLE_PROBE = 64;
const SAMPLES_PER_REASON = 3;
/** More excluded ids than this are put in a Set; fewer are scanned. */
const EXCLUDE_SCAN_LIMIT = 8;

/** Already validated and normalised by the HTTP layer. */
export interface SelectionRequest {
  /** normalised, or 'auto' */
  srcLang: string;
  /** normalised */
  tgtLang: string;
  pipeline: { asr: boolean; nmt: boolean; tts: boolean; semantic: boolean; tone: boolean };
  /** requested feature names (those set to true); unknown names throw UnknownFeatureError */
  features: string[];
  routingKey?: string | null;
  public: boolean;
  requireGpu: boolean;
  /** restricts the candidate sources of src 'auto'; null/absent/empty = no restriction */
  autoLangs?: string[] | null;
  preferredNodeId?: string | null;
  excludeNodeIds: string[];
}

export interface KnownLoad {
  running: number;
  reserved: number;
}

export interface SelectionPolicy {
  strategy: 'p2c' | 'least_loaded' | 'random';
  /** percent, default 85 */
  resourceThreshold: number;
  /** routing-key affinity on (default true) */
  affinity: boolean;
  /**
   * Live counters the selector knows beyond the snapshot (reservations it made, running jobs it
   * knows), by node id. Called once per language candidate that reaches the capacity check:
   * return a stored object, do not build one per call.
   */
  knownLoad?: (nodeId: string) => KnownLoad | undefined;
  /** [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
}

export interface Breakdown {
  total_nodes: number;
  candidates: number;
  eligible: number;
  /** only reasons with count > 0 */
  rejected: Partial<Record<RejectReason, number>>;
  /** up to 3 node ids per reason (best effort for reasons 1–4, see sampleMissing) */
  samples: Partial<Record<RejectReason, string[]>>;
}

/** How ranked[0] was chosen; null when nothing is eligible. */
export type Choice = 'preferred' | 'affinity' | SelectionPolicy['strategy'];

export interface SelectionResult {
  /** eligible node ids in preference order: [chosen, next to try on a reservation conflict, …], ≤ MAX_RANKED */
  ranked: string[];
  choice: Choice | null;
  /** "src:tgt" as requested ("zh:en", "auto:en"), whatever the pipeline */
  pool: string;
  breakdown: Breakdown;
  /** "0/1000 nodes available: 788 lang_pair_unsupported, 150 capacity_exceeded" */
  message: string;
}

type Pipeline = SelectionRequest['pipeline'];

/**
 * Service types a job needs every node to report ready: its pipeline flags plus those of its
 * features (PROTOCOL.md "Feature expansion"), deduplicated: the pipeline's in the order asr,
 * nmt, tts, semantic, tone, then the features' in request order. Throws UnknownFeatureError for
 * an unknown feature.
 */
export function requiredServiceTypes(req: Pick<SelectionRequest, 'pipeline' | 'features'>): ServiceType[] {
  return serviceTypes(req.pipeline, expandFeatures(req.features).types);
}

function serviceTypes(pipeline: Pipeline, featureTypes: readonly ServiceType[]): ServiceType[] {
  const out: ServiceType[] = [];
  const add = (on: boolean, type: ServiceType): void => {
    if (on && !out.includes(type)) out.push(type);
  };
  add(pipeline.asr, 'asr');
  add(pipeline.nmt, 'nmt');
  add(pipeline.tts, 'tts');
  add(pipeline.semantic, 'semantic');
  add(pipeline.tone, 'tone');
  for (const type of featureTypes) add(true, type);
  return out;
}

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

type Sets = readonly ReadonlySet<string>[];

/** One language reason. */
interface LangStep {
  reason: number;
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
  /** This step alone, on one node's profile (once a step is not indexable; memoised per profile). */
  check: (p: LanguageProfile) => boolean;
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
function langSteps(index: SnapshotIndex, req: SelectionRequest): LangStep[] {
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

/** Is `id` in the union? */
function inUnion(sets: Sets, id: string): boolean {
  for (let i = 0; i < sets.length; i++) if (sets[i]!.has(id)) return true;
  return false;
}

/** Is `id`, a member of sets[i], also in an earlier set? (dedupe without allocating) */
function seenBefore(sets: Sets, i: number, id: string): boolean {
  for (let j = 0; j < i; j++) if (sets[j]!.has(id)) return true;
  return false;
}

function unionSize(sets: Sets): number {
  if (sets.length === 1) return sets[0]!.size;
  let n = 0;
  for (let i = 0; i < sets.length; i++) for (const id of sets[i]!) if (!seenBefore(sets, i, id)) n++;
  return n;
}

// Eligible nodes of the current call (module-level scratch, reused: selection is synchronous).
const scratchIds: string[] = [];
let scratchLoad: Float64Array = new Float64Array(1024);
let scratchGpu: Float64Array = new Float64Array(1024);
let scratchScore: Float64Array = new Float64Array(1024);

function growScratch(n: number): void {
  const size = Math.max(n + 1, scratchLoad.length * 2);
  const grow = (old: Float64Array): Float64Array => {
    const next = new Float64Array(size);
    next.set(old);
    return next;
  };
  scratchLoad = grow(scratchLoad);
  scratchGpu = grow(scratchGpu);
  scratchScore = new Float64Array(size);
}

/** `list.includes(item)` for short string lists, as a plain loop (much faster in the hot path). */
function contains(list: readonly string[], item: string): boolean {
  for (let i = 0; i < list.length; i++) if (list[i] === item) return true;
  return false;
}

/** One selection's visit of the language candidates: reasons 5–14 and the eligible list. */
class Pass {
  readonly counts: number[] = new Array<number>(REJECT_REASONS.length).fill(0);
  readonly samples: (string[] | undefined)[] = [];
  candidates = 0;
  eligible = 0;
  preferredIndex = -1;
  // The request and policy, flattened for the per-node loop.
  private readonly requireGpu: boolean;
  private readonly publicJob: boolean;
  private readonly threshold: number;
  private readonly preferredId: string | null;
  private readonly excludeList: readonly string[] | null;
  private readonly excludeSet: ReadonlySet<string> | null;
  private readonly knownLoad: ((nodeId: string) => KnownLoad | undefined) | null;
  private readonly languageMemo = new Map<LanguageProfile, number>();

  constructor(
    req: SelectionRequest,
    policy: SelectionPolicy,
    /** language steps to check per node (those after the last indexable one) */
    private readonly lateSteps: readonly LangStep[],
    private readonly types: readonly ServiceType[],
    private readonly flags: readonly FeatureFlag[],
  ) {
    this.requireGpu = req.requireGpu;
    this.publicJob = req.public;
    this.threshold = policy.resourceThreshold;
    this.preferredId = req.preferredNodeId ?? null;
    const exclude = req.excludeNodeIds;
    this.excludeSet = exclude.length > EXCLUDE_SCAN_LIMIT ? new Set(exclude) : null;
    this.excludeList = exclude.length > 0 && exclude.length <= EXCLUDE_SCAN_LIMIT ? exclude : null;
    this.knownLoad = policy.knownLoad ?? null;
  }

  reject(reason: number, id: string): void {
    this.counts[reason]!++;
    this.sample(reason, id);
  }

  sample(reason: number, id: string): boolean {
    let list = this.samples[reason];
    if (list === undefined) this.samples[reason] = list = [];
    if (list.length >= SAMPLES_PER_REASON) return false;
    list.push(id);
    return true;
  }

  /**
   * The first per-node language step the profile fails (its reason), or -1. Memoised per
   * profile: profiles are shared by every node with the same language capabilities, and fleets
   * have few distinct ones.
   */
  private languageReason(profile: LanguageProfile): number {
    let reason = this.languageMemo.get(profile);
    if (reason === undefined) {
      reason = -1;
      for (const step of this.lateSteps) {
        if (!step.check(profile)) {
          reason = step.reason;
          break;
        }
      }
      this.languageMemo.set(profile, reason);
    }
    return reason;
  }

  /** `id` is node.entry.id (passed to save a load). */
  visit(node: ReplicaNode, id: string): void {
    if (this.lateSteps.length > 0) {
      const reason = this.languageReason(node.profile);
      if (reason >= 0) return this.reject(reason, id);
    }
    this.candidates++;
    const e = node.entry;
    if (e.status !== 'ready') return this.reject(e.status === 'offline' ? OFFLINE : NOT_READY, id);
    if (e.draining) return this.reject(DRAINING, id);
    if (this.requireGpu && !e.gpu) return this.reject(NO_GPU, id);
    if (this.publicJob && !e.public) return this.reject(NOT_PUBLIC, id);
    const types = this.types;
    for (let i = 0; i < types.length; i++)
      if (!contains(e.types, types[i]!)) return this.reject(NO_MODEL, id);
    const flags = this.flags;
    for (let i = 0; i < flags.length; i++)
      if (!contains(e.features, flags[i]!)) return this.reject(NO_FEATURE, id);
    if (this.excludeList !== null && contains(this.excludeList, id)) return this.reject(EXCLUDED, id);
    if (this.excludeSet !== null && this.excludeSet.has(id)) return this.reject(EXCLUDED, id);
    // Snapshot counts lag (published per flush); the selector's own counters lead for its own
    // reservations but miss other replicas'. Each count takes the larger of the two, so the
    // same reservation is never counted twice (once flushed, it is in both) and neither
    // source is ever under-counted. The reservation script re-checks against the live hash.
    let running = e.running;
    let reserved = e.reserved;
    if (this.knownLoad !== null) {
      const known = this.knownLoad(id);
      if (known !== undefined) {
        if (known.running > running) running = known.running;
        if (known.reserved > reserved) reserved = known.reserved;
      }
    }
    if (running + reserved >= e.max) return this.reject(CAPACITY, id);
    const threshold = this.threshold;
    const gpuPct = e.gpuPct;
    if (e.cpu >= threshold || (gpuPct !== null && gpuPct >= threshold) || e.mem >= threshold) {
      return this.reject(RESOURCES, id);
    }
    const n = this.eligible++;
    if (n >= scratchLoad.length) growScratch(n);
    scratchIds[n] = id;
    scratchLoad[n] = (running + reserved) / e.max;
    scratchGpu[n] = gpuPct ?? 0;
    if (id === this.preferredId) this.preferredIndex = n;
  }
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

function sizeSum(sets: Sets): number {
  let n = 0;
  for (let i = 0; i < sets.length; i++) n += sets[i]!.size;
  return n;
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

/** Indices 0..n-1, the best `k` by `better` (strict; ties keep index order), best first. */
function topK(n: number, k: number, better: (a: number, b: number) => boolean, skip = -1): number[] {
  const top: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i === skip) continue;
    if (top.length === k && !better(i, top[k - 1]!)) continue;
    let pos = top.length < k ? top.length : k - 1;
    while (pos > 0 && better(i, top[pos - 1]!)) {
      top[pos] = top[pos - 1]!;
      pos--;
    }
    top[pos] = i;
  }
  return top;
}

/** Lower load first: (running + reserved) / max, then GPU% (unreported = 0). */
const lessLoaded = (a: number, b: number): boolean =>
  scratchLoad[a]! < scratchLoad[b]! || (scratchLoad[a] === scratchLoad[b] && scratchGpu[a]! < scratchGpu[b]!);

/** Higher rendezvous score first; a tie goes to the smaller id. */
const higherScore = (a: number, b: number): boolean =>
  rendezvousBeats(scratchScore[a]!, scratchIds[a]!, scratchScore[b]!, scratchIds[b]!);

function randomIndex(random: () => number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.floor(random() * n)));
}

/** Eligible indices in preference order, and how the first was chosen. */
function rank(
  pass: Pass,
  req: SelectionRequest,
  policy: SelectionPolicy,
): { order: number[]; choice: Choice } {
  const n = pass.eligible;
  const preferred = pass.preferredIndex;
  const limit = preferred >= 0 ? MAX_RANKED - 1 : MAX_RANKED;
  if (policy.affinity && req.routingKey) {
    // The rest of the order is the key's runners-up: a conflict on the winner sends the key
    // where it would go if the winner left.
    const seed = rendezvousSeed(req.routingKey);
    for (let i = 0; i < n; i++) scratchScore[i] = rendezvousScore(seed, scratchIds[i]!);
    const order = topK(n, limit, higherScore, preferred);
    if (preferred < 0) return { order, choice: 'affinity' };
    order.unshift(preferred);
    return { order, choice: 'preferred' };
  }
  // The rest of the order is the least loaded others; least_loaded takes its head.
  const order = topK(n, limit, lessLoaded, preferred);
  if (preferred >= 0) {
    order.unshift(preferred);
    return { order, choice: 'preferred' };
  }
  let first = -1;
  const random = policy.random ?? Math.random;
  if (policy.strategy === 'random') {
    first = randomIndex(random, n);
  } else if (policy.strategy === 'p2c' && n > 1) {
    const a = randomIndex(random, n);
    let b = randomIndex(random, n - 1);
    if (b >= a) b++;
    first = lessLoaded(b, a) ? b : a;
  }
  if (first >= 0) {
    const at = order.indexOf(first);
    // Not in the top `limit` means it was beyond them: there are `limit` others to keep.
    if (at >= 0) order.splice(at, 1);
    else order.pop();
    order.unshift(first);
  }
  return { order, choice: policy.strategy };
}

function formatMessage(
  total: number,
  eligible: number,
  rejected: Partial<Record<RejectReason, number>>,
): string {
  const parts = (Object.entries(rejected) as [RejectReason, number][])
    .sort((a, b) => b[1] - a[1] || REJECT_REASONS.indexOf(a[0]) - REJECT_REASONS.indexOf(b[0]))
    .map(([reason, count]) => `${count} ${reason}`);
  const head = `${eligible}/${total} nodes available`;
  return parts.length === 0 ? head : `${head}: ${parts.join(', ')}`;
}

/**
 * Chooses nodes for a job. `ranked[0]` is the choice: the preferred node when eligible; else
 * the routing key's rendezvous winner among the eligible nodes (when affinity is on); else by
 * strategy — p2c: the less loaded of two random eligible nodes; least_loaded; random. The
 * rest of `ranked` (for reservation conflicts) are the key's runners-up with affinity, else
 * the least loaded others. Throws UnknownFeatureError for an unknown feature name.
 */
export function select(
  index: SnapshotIndex,
  req: SelectionRequest,
  policy: SelectionPolicy,
): SelectionResult {
  const needs = expandFeatures(req.features);
  const types = serviceTypes(req.pipeline, needs.types);
  const steps = langSteps(index, req);
  let indexed = 0;
  while (indexed < steps.length && steps[indexed]!.prefix !== null) indexed++;
  const total = index.size;
  // A type every node reports ready needs no per-node check (common: homogeneous fleets).
  const checkTypes = types.filter((type) => index.index('type', type).size < total);
  const pass = new Pass(req, policy, steps.slice(indexed), checkTypes, needs.flags);

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

  const rejected: Partial<Record<RejectReason, number>> = {};
  const samples: Partial<Record<RejectReason, string[]>> = {};
  for (let r = 0; r < REJECT_REASONS.length; r++) {
    const count = pass.counts[r]!;
    if (count === 0) continue;
    const reason = REJECT_REASONS[r]!;
    rejected[reason] = count;
    const list = pass.samples[r];
    if (list !== undefined && list.length > 0) samples[reason] = list;
  }
  const { order, choice } =
    pass.eligible > 0 ? rank(pass, req, policy) : { order: [] as number[], choice: null as Choice | null };
  return {
    ranked: order.map((i) => scratchIds[i]!),
    choice,
    pool: pairKey(req.srcLang, req.tgtLang),
    breakdown: {
      total_nodes: total,
      candidates: pass.candidates,
      eligible: pass.eligible,
      rejected,
      samples,
    },
    message: formatMessage(total, pass.eligible, rejected),
  };
}
