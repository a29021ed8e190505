import { AUTO_LANG, pairKey } from '../../shared/language-pairs.ts';
import { expandFeatures } from './feature-expansion.ts';
import {
  requiredServiceTypes,
  select,
  REJECT_REASONS,
  type Breakdown,
  type Choice,
  type RejectReason,
  type SelectionPolicy,
  type SelectionRequest,
} from './selection.ts';
import { REJECT_REASON_TEXT } from './reject-reasons.ts';
import { SnapshotIndex, type ReplicaNode } from './snapshot-index.ts';

/**
 * "Why not node X?" (POST /v1/explain): a selection replayed against the replica's current
 * snapshot, with every node's FIRST failing reason and, for a named node, the figures behind
 * it. Pure and synchronous, like selection, and built only on its public `select()`: each node
 * is put alone in a scratch SnapshotIndex and selected for, so its reason is by construction
 * the one the real selection counts it under (the per-reason counts add up to the breakdown).
 * O(fleet) selections of one node: an operator's question, not a hot path.
 */

/** Node ids listed per reason in `by_reason` (the count is always complete). */
export const EXPLAIN_IDS_PER_REASON = 200;

export interface ExplainFigures {
  /** the reason's text (REJECT_REASON_TEXT), or why an eligible node was (not) chosen */
  text: string;
  /** what was needed and what the node has, per reason */
  figures: Record<string, unknown>;
}

export interface NodeExplanation extends ExplainFigures {
  node_id: string;
  /** in the snapshot at all */
  known: boolean;
  /** its first failing reason, null when eligible */
  reason: RejectReason | null;
  eligible: boolean;
  /** its place in the ranked list (0 = chosen), null when not ranked */
  rank: number | null;
}

export interface Explanation {
  pool: string;
  choice: Choice | null;
  /** who the replay chose (p2c and random choices are random: another replay may differ) */
  chosen: string | null;
  ranked: string[];
  breakdown: Breakdown;
  message: string;
  /** every node under its first failing reason (and `eligible`): count, ids (≤ EXPLAIN_IDS_PER_REASON) */
  by_reason: Partial<Record<RejectReason | 'eligible', { count: number; nodes: string[] }>>;
  node: NodeExplanation | null;
}

export function explain(
  index: SnapshotIndex,
  req: SelectionRequest,
  policy: SelectionPolicy,
  nodeId: string | null,
): Explanation {
  const result = select(index, req, policy);
  const byReason: Explanation['by_reason'] = {};
  const scratch = new SnapshotIndex();
  // The same policy, minus the randomness: one node's eligibility does not depend on it.
  const alone: SelectionPolicy = { ...policy, random: () => 0 };
  let named: RejectReason | null | undefined;
  for (const node of index.all()) {
    const reason = firstReason(scratch, node, req, alone);
    const key = reason ?? 'eligible';
    const group = (byReason[key] ??= { count: 0, nodes: [] });
    group.count++;
    if (group.nodes.length < EXPLAIN_IDS_PER_REASON) group.nodes.push(node.entry.id);
    if (node.entry.id === nodeId) named = reason;
  }
  const node = nodeId === null ? null : describe(index.get(nodeId), nodeId, named, req, policy, result);
  return {
    pool: result.pool,
    choice: result.choice,
    chosen: result.ranked[0] ?? null,
    ranked: result.ranked,
    breakdown: result.breakdown,
    message: result.message,
    by_reason: byReason,
    node,
  };
}

/** The node's first failing reason for `req`, or null: a selection over it alone. */
function firstReason(
  scratch: SnapshotIndex,
  node: ReplicaNode,
  req: SelectionRequest,
  policy: SelectionPolicy,
): RejectReason | null {
  scratch.upsert(node.entry, node.shard);
  try {
    const one = select(scratch, req, policy);
    if (one.breakdown.eligible > 0) return null;
    for (const reason of REJECT_REASONS) if (one.breakdown.rejected[reason]) return reason;
    return null;
  } finally {
    scratch.remove(node.entry.id);
  }
}

const sorted = (set: Iterable<string>): string[] => [...set].sort();

function describe(
  node: ReplicaNode | undefined,
  nodeId: string,
  reason: RejectReason | null | undefined,
  req: SelectionRequest,
  policy: SelectionPolicy,
  result: ReturnType<typeof select>,
): NodeExplanation {
  if (node === undefined || reason === undefined) {
    return {
      node_id: nodeId,
      known: false,
      reason: null,
      eligible: false,
      rank: null,
      text: `${nodeId} is not in this selector's snapshot: never registered, or removed after SB_NODE_RETENTION_MS offline`,
      figures: {},
    };
  }
  const rank = result.ranked.indexOf(nodeId);
  const base = {
    node_id: nodeId,
    known: true,
    reason,
    eligible: reason === null,
    rank: rank >= 0 ? rank : null,
  };
  if (reason === null) return { ...base, ...eligibleFigures(node, rank, policy, result) };
  return { ...base, text: REJECT_REASON_TEXT[reason], figures: reasonFigures(node, reason, req, policy) };
}

/** Load as ranking sees it: (running + reserved) / max, with this selector's own counts. */
function load(
  node: ReplicaNode,
  policy: SelectionPolicy,
): { running: number; reserved: number; max: number } {
  const e = node.entry;
  const known = policy.knownLoad?.(e.id);
  return {
    running: Math.max(e.running, known?.running ?? 0),
    reserved: Math.max(e.reserved, known?.reserved ?? 0),
    max: e.max,
  };
}

function eligibleFigures(
  node: ReplicaNode,
  rank: number,
  policy: SelectionPolicy,
  result: ReturnType<typeof select>,
): ExplainFigures {
  const l = load(node, policy);
  const figures = { ...l, load: (l.running + l.reserved) / l.max, gpu_percent: node.entry.gpuPct };
  if (rank === 0) return { text: `eligible and chosen (${result.choice})`, figures };
  const how =
    result.choice === 'affinity'
      ? 'the routing key prefers other nodes (rendezvous hashing)'
      : result.choice === 'preferred'
        ? 'the job names another preferred node (or its session is bound to one)'
        : result.choice === 'least_loaded'
          ? 'less loaded nodes come first'
          : `the ${result.choice} choice fell on another node`;
  return {
    text:
      rank > 0
        ? `eligible, ranked ${rank + 1} of ${result.ranked.length}: next to try after a reservation conflict; ${how}`
        : `eligible, not among the ${result.ranked.length} ranked: ${how}`,
    figures,
  };
}

function reasonFigures(
  node: ReplicaNode,
  reason: RejectReason,
  req: SelectionRequest,
  policy: SelectionPolicy,
): Record<string, unknown> {
  const e = node.entry;
  const p = node.profile;
  const src = req.srcLang;
  const tgt = req.tgtLang;
  switch (reason) {
    case 'asr_lang_unsupported':
      return { needed_asr: src, node_asr: sorted(p.asr) };
    case 'src_auto_no_candidate':
      return { auto_langs: req.autoLangs ?? null, node_asr: sorted(p.asr) };
    case 'lang_pair_unsupported':
      return {
        needed_pair: src === AUTO_LANG ? pairKey(AUTO_LANG, tgt) : pairKey(src, tgt),
        node_pairs_into_target: sorted([...p.nmtPairs].filter((pair) => pair.endsWith(`:${tgt}`))),
        node_pairs_from_source: sorted([...p.nmtPairs].filter((pair) => pair.startsWith(`${src}:`))),
      };
    case 'tts_lang_unsupported':
      return { needed_tts: tgt, node_tts: sorted(p.tts) };
    case 'semantic_lang_unsupported':
      return { needed_semantic: src, node_semantic: sorted(p.semantic) };
    case 'offline':
    case 'status_not_ready':
      return { status: e.status, last_heartbeat_at: e.hb, heartbeat_age_ms: Math.max(0, Date.now() - e.hb) };
    case 'draining':
      return { draining: true };
    case 'quarantined':
      return {
        quarantined_until: e.quarantinedUntil ?? null,
        remaining_ms: Math.max(0, (e.quarantinedUntil ?? 0) - Date.now()),
        quarantine_reason: e.quarantineReason ?? null,
      };
    case 'gpu_unavailable':
      return { require_gpu: req.requireGpu, node_gpu: e.gpu };
    case 'not_accepting_public':
      return { public_job: req.public, node_accepts_public: e.public };
    case 'model_not_available': {
      const needed = requiredServiceTypes(req);
      return {
        needed_types: needed,
        node_ready_types: e.types,
        missing: needed.filter((t) => !e.types.includes(t)),
      };
    }
    case 'feature_unsupported': {
      const flags = expandFeatures(req.features).flags;
      return {
        needed_features: flags,
        node_features: e.features,
        missing: flags.filter((f) => !e.features.includes(f)),
      };
    }
    case 'excluded':
      return { exclude_node_ids: req.excludeNodeIds };
    case 'capacity_exceeded': {
      const l = load(node, policy);
      return {
        ...l,
        in_use: l.running + l.reserved,
        snapshot_running: e.running,
        snapshot_reserved: e.reserved,
      };
    }
    case 'resource_threshold_exceeded': {
      const threshold = policy.resourceThreshold;
      const over = [
        ...(e.cpu >= threshold ? ['cpu_percent'] : []),
        ...(e.gpuPct !== null && e.gpuPct >= threshold ? ['gpu_percent'] : []),
        ...(e.mem >= threshold ? ['mem_percent'] : []),
      ];
      return { threshold, cpu_percent: e.cpu, gpu_percent: e.gpuPct, mem_percent: e.mem, over };
    }
  }
}
