/** Shared fixtures for the selection unit tests (test/unit/selection-*.test.ts). */
import { expect } from 'vitest';
import {
  autoSources,
  languageProfile,
  normalizeLang,
  pipelinePools,
  servesNmt,
  type LanguageCapabilities,
} from '../../shared/language-pairs.ts';
import { SERVICE_TYPES, type ServiceType } from '../../shared/protocol/node-messages.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { FEATURE_EXPANSION } from '../../services/selector/feature-expansion.ts';
import {
  MAX_RANKED,
  REJECT_REASONS,
  select,
  type RejectReason,
  type SelectionPolicy,
  type SelectionRequest,
  type SelectionResult,
} from '../../services/selector/selection.ts';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
// ---------------------------------------------------------------------------------------------
// Fixtures

/**
 * The pools the worker's flush publishes for an entry (shared/snapshot-entry.ts):
 * its languages' full-pipeline pools, none while offline.
 */
export function workerPools(e: Pick<SnapshotEntry, 'status' | 'lang'>): string[] {
  return e.status === 'offline' ? [] : pipelinePools(languageProfile(e.lang));
}

/**
 * A ready, idle, public GPU node serving zh↔en (+ja ASR) with every type and no feature flag;
 * its pools as the worker would publish them (unless given).
 */
export function node(id: string, over: Partial<SnapshotEntry> = {}): SnapshotEntry {
  const e: SnapshotEntry = {
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
  return over.pools === undefined ? { ...e, pools: workerPools(e) } : e;
}

export const withLang = (
  id: string,
  lang: LanguageCapabilities,
  over: Partial<SnapshotEntry> = {},
): SnapshotEntry => node(id, { lang, ...over });

/** An index of the entries, each with its pools as the worker publishes them for its languages now. */
export function fleet(...entries: SnapshotEntry[]): SnapshotIndex {
  const index = new SnapshotIndex();
  for (const e of entries) index.upsert({ ...e, pools: workerPools(e) }, 0);
  return index;
}

export const FULL = { asr: true, nmt: true, tts: true, semantic: false, tone: false };

export function request(over: Partial<SelectionRequest> = {}): SelectionRequest {
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

export function policy(over: Partial<SelectionPolicy> = {}): SelectionPolicy {
  return { strategy: 'least_loaded', resourceThreshold: 85, affinity: true, ...over };
}

export function run(
  index: SnapshotIndex,
  req: Partial<SelectionRequest> = {},
  pol: Partial<SelectionPolicy> = {},
): SelectionResult {
  return select(index, request(req), policy(pol));
}

/** The invariants every result keeps. */
export function checkInvariants(index: SnapshotIndex, r: SelectionResult): void {
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

export function referenceReason(
  e: SnapshotEntry,
  req: SelectionRequest,
  pol: SelectionPolicy,
): RejectReason | null {
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

export function referenceBreakdown(
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
export type Breaker = (e: SnapshotEntry, req: SelectionRequest) => void;
export const BREAK: Record<RejectReason, Breaker> = {
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
export const CONCRETE_REASONS = REJECT_REASONS.filter((r) => r !== 'src_auto_no_candidate');

export function orderFixture(breaks: readonly RejectReason[]): {
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

// ---------------------------------------------------------------------------------------------
// Choice
/** Nodes n0..n(k-1) with running = the given loads (max 4). */
export const loaded = (...running: number[]): SnapshotEntry[] =>
  running.map((r, i) => node(`n${i}`, { running: r, gpuPct: 10 }));

/** A random source replaying the given values. */
export const replay = (...values: number[]): (() => number) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};
