import type { ServiceType } from '../../shared/protocol/node-messages.ts';
import { andBits, forEachInOrder, hasBit, setBit, splitBits, splitBitsFirst, type Bits } from './bitset.ts';
import type { FeatureFlag } from './feature-expansion.ts';
import { passBits, type LangStep } from './language-stage.ts';
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
import type { SnapshotIndex } from './snapshot-index.ts';

/**
 * The per-node filters of a selection (reasons 6–16, plus the language steps the prefixes did
 * not answer) over the visit of the language stage, as bit-set masks in reason order: each
 * reason takes the nodes still in the running that fail it (popcount = its count), and its
 * samples are the first of them in visit order. The nodes left are eligible (eligible-nodes.ts:
 * a bit set, listed only when the visit is a union of sets). Work: O(words of the bit sets) per
 * reason, plus O(eligible) for a listed visit.
 */

const SAMPLES_PER_REASON = 3;

// Scratch bit sets of the index this stage uses (language-stage.ts uses 0–4 and 10).
const FAIL = 5;
const PASS = 6;
const TMP = 7;
const MASK = 8;
const OVERRIDDEN = 9;

/** One selection's visit of the language candidates: reasons 6–16 and the eligible nodes. */
export class Pass {
  readonly counts: number[] = new Array<number>(REJECT_REASONS.length).fill(0);
  readonly samples: (string[] | undefined)[] = [];
  candidates = 0;
  eligible = 0;
  /** the preferred node's slot when eligible, else -1 */
  preferredSlot = -1;
  /** the first failing slots of a reject (scratch) */
  private readonly first = new Int32Array(SAMPLES_PER_REASON);
  private readonly requireGpu: boolean;
  private readonly publicJob: boolean;
  private readonly threshold: number;
  private readonly preferredId: string | null;
  private readonly exclude: readonly string[];
  private readonly knownLoad: ((nodeId: string) => KnownLoad | undefined) | null;
  private readonly knownLoadIds: (() => Iterable<string>) | null;
  private readonly knownLoadMarked: boolean;
  /** Server-ish time of this selection, for quarantines (they end by themselves). */
  private readonly now = Date.now();

  constructor(
    req: SelectionRequest,
    policy: SelectionPolicy,
    /** service types every node must report ready (those not every node has) */
    private readonly types: readonly ServiceType[],
    private readonly flags: readonly FeatureFlag[],
  ) {
    this.requireGpu = req.requireGpu;
    this.publicJob = req.public;
    this.threshold = policy.resourceThreshold;
    this.preferredId = req.preferredNodeId ?? null;
    this.exclude = req.excludeNodeIds;
    this.knownLoad = policy.knownLoad ?? null;
    this.knownLoadIds = policy.knownLoadIds ?? null;
    this.knownLoadMarked = policy.knownLoadMarked === true;
  }

  sample(reason: number, id: string): boolean {
    let list = this.samples[reason];
    if (list === undefined) this.samples[reason] = list = [];
    if (list.length >= SAMPLES_PER_REASON) return false;
    list.push(id);
    return true;
  }

  /**
   * Filters the visit: `rem` = its members (consumed), `size` = |rem|, `order` = its order
   * (null or one set: slot order). `late` = the language steps left to check, in order.
   */
  filter(
    index: SnapshotIndex,
    rem: Bits,
    size: number,
    order: Bits[] | null,
    late: readonly LangStep[],
  ): void {
    const nw = index.words;
    const fail = index.scratchBits(FAIL);
    const slotOrder = order === null || order.length === 1;
    const first = this.first;
    let left = size;
    // In slot order the split itself finds the samples (the first failing slots); otherwise
    // they are the first of the failing nodes in the visit's order.
    const reject = (reason: number, mask: Bits, negate: boolean): void => {
      const want = SAMPLES_PER_REASON - (this.samples[reason]?.length ?? 0);
      if (slotOrder) {
        const n = splitBitsFirst(rem, mask, negate, nw, first, want);
        if (n === 0) return;
        left -= n;
        this.counts[reason]! += n;
        for (let i = 0; i < want && i < n; i++) this.sample(reason, index.idAt(first[i]!));
        return;
      }
      const n = splitBits(fail, rem, mask, negate, nw);
      if (n === 0) return;
      left -= n;
      this.counts[reason]! += n;
      if (want <= 0) return;
      forEachInOrder(order, fail, nw, (slot) => this.sample(reason, index.idAt(slot)));
    };
    for (const step of late) {
      reject(step.reason, passBits(index, step, index.scratchBits(PASS), index.scratchBits(TMP), nw), true);
    }
    this.candidates = left;
    if (this.candidates === 0) return;

    reject(OFFLINE, index.offline, false);
    reject(NOT_READY, index.notReady, false);
    reject(DRAINING, index.draining, false);
    const mask = index.scratchBits(MASK);
    if (index.quarantinedNodes > 0) {
      // those whose quarantine has not ended yet
      const { quarantined, quarantinedUntil } = index;
      for (let w = 0; w < nw; w++) {
        let q = rem[w]! & quarantined[w]!;
        for (let b = q; b !== 0; b &= b - 1) {
          const low = b & -b;
          if (quarantinedUntil[(w << 5) | (31 - Math.clz32(low))]! <= this.now) q &= ~low;
        }
        mask[w] = q;
      }
      reject(QUARANTINED, mask, false);
    }
    if (this.requireGpu) reject(NO_GPU, index.gpu, true);
    if (this.publicJob) reject(NOT_PUBLIC, index.acceptsPublic, true);
    const all = (kind: 'type' | 'feature', keys: readonly string[]): Bits => {
      let bits = index.bits(index.index(kind, keys[0]!));
      for (let i = 1; i < keys.length; i++)
        bits = andBits(mask, bits, index.bits(index.index(kind, keys[i]!)), nw);
      return bits;
    };
    if (this.types.length > 0) reject(NO_MODEL, all('type', this.types), true);
    if (this.flags.length > 0) reject(NO_FEATURE, all('feature', this.flags), true);
    if (this.exclude.length > 0) {
      mask.fill(0, 0, nw);
      for (const id of this.exclude) {
        const slot = index.slotOf(id);
        if (slot >= 0) setBit(mask, slot);
      }
      reject(EXCLUDED, mask, false);
    }
    const overrides = this.knownLoads(index, rem, mask);
    reject(CAPACITY, overrides === null ? index.full : mask, false);
    reject(RESOURCES, index.overThreshold(this.threshold), false);

    // The eligible nodes: in slot order they stay the bit set `rem`; a visit of several sets
    // in turn lists them in visit order, by inline loops (no callback per node: at 10,000+
    // eligible nodes a call per node cost more than the rest of the selection).
    const el = index.eligible;
    el.words = nw;
    el.overrides = overrides;
    el.overridden = index.scratchBits(OVERRIDDEN);
    if (order !== null && order.length > 1) {
      el.bits = null;
      el.reserve(left);
      const slots = el.slots;
      let at = 0;
      // the members of order[0] by slot, then those of order[1] not in order[0], …
      for (let i = 0; i < order.length; i++) {
        const own = order[i]!;
        for (let w = 0; w < nw; w++) {
          let b = rem[w]! & own[w]!;
          for (let j = 0; j < i && b !== 0; j++) b &= ~order[j]![w]!;
          for (; b !== 0; b &= b - 1) slots[at++] = (w << 5) | (31 - Math.clz32(b & -b));
        }
      }
      el.n = at;
    } else {
      el.bits = rem;
      el.n = left;
    }
    const preferred = this.preferredId === null ? -1 : index.slotOf(this.preferredId);
    if (preferred >= 0 && hasBit(rem, preferred)) this.preferredSlot = preferred;
    this.eligible = el.n;
  }

  /**
   * Snapshot counts lag (published per flush); the selector's own counters lead for its own
   * reservations but miss other replicas'. Each count takes the larger of the two, so the same
   * reservation is never counted twice (once flushed, it is in both) and neither source is
   * ever under-counted. The reservation script re-checks against the live hash. Asks
   * knownLoad for the marked nodes still in the running (knownLoadMarked), else for the nodes
   * knownLoadIds lists, else for every node still in the running;
   * writes into `full` the nodes full with them and returns the other changed loads by slot
   * (their slots set in the OVERRIDDEN scratch), or null when nothing is known.
   */
  private knownLoads(index: SnapshotIndex, rem: Bits, full: Bits): Map<number, number> | null {
    const knownLoad = this.knownLoad;
    if (knownLoad === null) return null;
    const nw = index.words;
    let overrides: Map<number, number> | null = null;
    const overridden = index.scratchBits(OVERRIDDEN);
    const { running, reserved, max } = index;
    const visit = (s: number, id: string): boolean => {
      const known = knownLoad(id);
      if (known === undefined) return true;
      const r = Math.max(running[s]!, known.running);
      const v = Math.max(reserved[s]!, known.reserved);
      if (r === running[s] && v === reserved[s]) return true;
      if (overrides === null) {
        overrides = new Map();
        full.set(index.full.subarray(0, nw));
        overridden.fill(0, 0, nw);
      }
      if (r + v >= max[s]!) setBit(full, s);
      else {
        overrides.set(s, (r + v) / max[s]!);
        setBit(overridden, s);
      }
      return true;
    };
    if (this.knownLoadMarked) {
      const marks = index.knownMarks;
      for (let w = 0; w < nw; w++) {
        for (let b = rem[w]! & marks[w]!; b !== 0; b &= b - 1) {
          const s = (w << 5) | (31 - Math.clz32(b & -b));
          visit(s, index.idAt(s));
        }
      }
    } else if (this.knownLoadIds !== null) {
      for (const id of this.knownLoadIds()) {
        const s = index.slotOf(id);
        if (s >= 0 && hasBit(rem, s)) visit(s, id);
      }
    } else {
      forEachInOrder(null, rem, nw, (s) => visit(s, index.idAt(s)));
    }
    return overrides;
  }
}
