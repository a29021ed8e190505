import { pairKey } from '../../shared/language-pairs.ts';
import type { ServiceType } from '../../shared/protocol/node-messages.ts';
import { expandFeatures } from './feature-expansion.ts';
import { langSteps, visitLanguageCandidates } from './language-stage.ts';
import { Pass } from './node-filters.ts';
import { rank, type Choice } from './ranking.ts';
import { REJECT_REASONS, type RejectReason } from './reject-reasons.ts';
import type { SelectionPolicy, SelectionRequest } from './selection-inputs.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

/**
 * Node selection (ARCHITECTURE.md "Selection"): pure and synchronous, over the selector's
 * in-memory SnapshotIndex. No I/O; the reservation that follows is the caller's.
 *
 * Filters run in the documented order and a node is counted once, under its FIRST failing
 * reason, so `eligible + Σ rejected = total_nodes`; `candidates` = nodes passing 1–5.
 *
 * This module is the entry point; the stages live in:
 *   snapshot-index.ts   node slots: the filter predicates as bit sets (bitset.ts), the index Sets
 *   language-stage.ts   reasons 1–5 as masks of index sets, and the visit of the rest
 *   node-filters.ts     reasons 6–16 (and the language steps left) as masks over the visit
 *   eligible-nodes.ts   the eligible list (the index's scratch, no per-node allocation)
 *   ranking.ts          preferred / affinity / strategy, and the ranked list
 */

// The feature API the HTTP layer needs, re-exported so that selection is its one entry point.
export { UnknownFeatureError, validateFeatures } from './feature-expansion.ts';
export { REJECT_REASONS, type RejectReason } from './reject-reasons.ts';
export type { KnownLoad, SelectionPolicy, SelectionRequest } from './selection-inputs.ts';
export { MAX_RANKED, type Choice } from './ranking.ts';

export interface Breakdown {
  total_nodes: number;
  candidates: number;
  eligible: number;
  /** only reasons with count > 0 */
  rejected: Partial<Record<RejectReason, number>>;
  /** up to 3 node ids per reason (best effort for reasons 1–4, see sampleMissing in language-stage.ts) */
  samples: Partial<Record<RejectReason, string[]>>;
}

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
 * nmt, tts, semantic, tone, then its further `use_<type>` flags, then the features' in request order. Throws UnknownFeatureError for
 * an unknown feature.
 */
export function requiredServiceTypes(
  req: Pick<SelectionRequest, 'pipeline' | 'features' | 'extraTypes'>,
): ServiceType[] {
  return serviceTypes(req.pipeline, expandFeatures(req.features).types, req.extraTypes);
}

function serviceTypes(
  pipeline: Pipeline,
  featureTypes: readonly ServiceType[],
  extraTypes: readonly ServiceType[] = [],
): ServiceType[] {
  const out: ServiceType[] = [];
  const add = (on: boolean, type: ServiceType): void => {
    if (on && !out.includes(type)) out.push(type);
  };
  add(pipeline.asr, 'asr');
  add(pipeline.nmt, 'nmt');
  add(pipeline.tts, 'tts');
  add(pipeline.semantic, 'semantic');
  add(pipeline.tone, 'tone');
  for (const type of extraTypes) add(true, type);
  for (const type of featureTypes) add(true, type);
  return out;
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
  const types = serviceTypes(req.pipeline, needs.types, req.extraTypes);
  const steps = langSteps(index, req);
  let indexed = 0;
  while (indexed < steps.length && steps[indexed]!.prefix !== null) indexed++;
  const total = index.size;
  // A type every node reports ready needs no mask (common: homogeneous fleets).
  const checkTypes = types.filter((type) => index.index('type', type).size < total);
  const pass = new Pass(req, policy, checkTypes, needs.flags);
  visitLanguageCandidates(pass, index, steps, indexed);

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
  const idOf = (slot: number): string => index.idAt(slot);
  const { order, choice } =
    pass.eligible > 0
      ? rank(index.eligible, index, idOf, pass.preferredSlot, req, policy)
      : { order: [] as number[], choice: null as Choice | null };
  return {
    ranked: order.map(idOf),
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
