import type { LanguageProfile } from '../../shared/language-pairs.ts';
import type { ServiceType } from '../../shared/protocol/node-messages.ts';
import { growScratch, scratchGpu, scratchIds, scratchLoad } from './eligible-nodes.ts';
import type { FeatureFlag } from './feature-expansion.ts';
import {
  CAPACITY,
  DRAINING,
  EXCLUDED,
  NO_FEATURE,
  NO_GPU,
  NO_MODEL,
  NOT_PUBLIC,
  NOT_READY,
  OFFLINE,
  QUARANTINED,
  REJECT_REASONS,
  RESOURCES,
} from './reject-reasons.ts';
import type { KnownLoad, SelectionPolicy, SelectionRequest } from './selection-inputs.ts';
import type { ReplicaNode } from './snapshot-index.ts';

/**
 * The per-node filters of a selection (reasons 5–15, plus the language reasons the indexes
 * could not answer), applied to each visited node, and the counts and samples of the
 * rejections. A node that passes them all joins the eligible list (eligible-nodes.ts).
 */

const SAMPLES_PER_REASON = 3;
/** More excluded ids than this are put in a Set; fewer are scanned. */
const EXCLUDE_SCAN_LIMIT = 8;

/** A language reason checked on one node's profile. */
export interface LanguageCheck {
  reason: number;
  /** This step alone, on one node's profile (once a step is not indexable; memoised per profile). */
  check: (p: LanguageProfile) => boolean;
}

/** `list.includes(item)` for short string lists, as a plain loop (much faster in the hot path). */
function contains(list: readonly string[], item: string): boolean {
  for (let i = 0; i < list.length; i++) if (list[i] === item) return true;
  return false;
}

/** One selection's visit of the language candidates: reasons 5–15 and the eligible list. */
export class Pass {
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
  /** Server-ish time of this selection, for quarantines (they end by themselves). */
  private readonly now = Date.now();

  constructor(
    req: SelectionRequest,
    policy: SelectionPolicy,
    /** language steps to check per node (those after the last indexable one) */
    private readonly lateSteps: readonly LanguageCheck[],
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
    const quarantined = e.quarantinedUntil;
    if (quarantined !== undefined && quarantined > this.now) return this.reject(QUARANTINED, id);
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
