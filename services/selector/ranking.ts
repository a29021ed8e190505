import { hasBit } from './bitset.ts';
import type { Eligible } from './eligible-nodes.ts';
import { leastLoaded } from './least-loaded.ts';
import { rendezvousScore, rendezvousSeed } from './rendezvous.ts';
import type { SelectionPolicy, SelectionRequest } from './selection-inputs.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

/**
 * Ranking of the eligible nodes (eligible-nodes.ts): the preferred node when eligible; else the
 * routing key's rendezvous winner (affinity); else by strategy (p2c, least_loaded, random) —
 * followed by the next ones to try on a reservation conflict. Affinity scores every eligible
 * node (a few integer operations each); the least loaded are found by least-loaded.ts (a walk
 * of the index's load order when the eligible nodes are many).
 */

/** Eligible nodes returned for the reservation-conflict retry, the chosen one included. */
export const MAX_RANKED = 8;

/** How ranked[0] was chosen; null when nothing is eligible. */
export type Choice = 'preferred' | 'affinity' | SelectionPolicy['strategy'];

/** Load of the eligible node in slot s: the index's, or this selector's known load where it overrides. */
function loadAt(el: Eligible, load: Float64Array, s: number): number {
  return el.overrides !== null && hasBit(el.overridden, s) ? el.overrides.get(s)! : load[s]!;
}

/**
 * Slots of the `k` eligible nodes (but `skip`) with the highest rendezvous score for `seed`,
 * best first; a tie goes to the smaller id (`idOf(slot)`, only read on a tie). Order-free: the
 * listed nodes or the bits are scanned alike, the score inline (rendezvousScore's fmix32: a
 * call per node cost a third of the scan); a node is offered only when it can enter.
 */
function highestScore(
  el: Eligible,
  nodeHash: Uint32Array,
  seed: number,
  idOf: (slot: number) => string,
  k: number,
  skip: number,
): number[] {
  const top = new TopScores(k, idOf);
  const bits = el.bits;
  if (bits === null) {
    for (let i = 0; i < el.n; i++) {
      const s = el.slots[i]!;
      const sc = rendezvousScore(seed, nodeHash[s]!);
      if (sc >= top.worst && s !== skip) top.offer(s, sc);
    }
    return top.slots;
  }
  for (let w = 0; w < el.words; w++) {
    for (let b = bits[w]!; b !== 0; b &= b - 1) {
      const s = (w << 5) | (31 - Math.clz32(b & -b));
      let h = seed ^ nodeHash[s]!;
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
      const sc = h >>> 0;
      if (sc >= top.worst && s !== skip) top.offer(s, sc);
    }
  }
  return top.slots;
}

/** The k highest (score, then smaller id) offered so far, best first. */
class TopScores {
  readonly slots: number[] = [];
  private readonly scores: number[] = [];
  /** the k-th score so far (−1 until k): a node below it cannot enter */
  worst = -1;

  constructor(
    private readonly k: number,
    private readonly idOf: (slot: number) => string,
  ) {}

  private higher(s: number, sc: number, p: number): boolean {
    return sc > this.scores[p]! || (sc === this.scores[p] && this.idOf(s) < this.idOf(this.slots[p]!));
  }

  offer(s: number, sc: number): void {
    const { slots, scores, k } = this;
    if (slots.length === k && !this.higher(s, sc, k - 1)) return;
    let pos = slots.length < k ? slots.length : k - 1;
    while (pos > 0 && this.higher(s, sc, pos - 1)) {
      slots[pos] = slots[pos - 1]!;
      scores[pos] = scores[pos - 1]!;
      pos--;
    }
    slots[pos] = s;
    scores[pos] = sc;
    if (slots.length === k) this.worst = scores[k - 1]!;
  }
}

function randomIndex(random: () => number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.floor(random() * n)));
}

/**
 * Eligible slots in preference order, and how the first was chosen. `el.n` eligible nodes
 * (> 0); `preferred` = the preferred node's slot when eligible, or -1; `idOf(slot)` its id.
 */
export function rank(
  el: Eligible,
  index: Pick<SnapshotIndex, 'hash' | 'load' | 'gpu0' | 'loadOrder'>,
  idOf: (slot: number) => string,
  preferred: number,
  req: SelectionRequest,
  policy: SelectionPolicy,
): { order: number[]; choice: Choice } {
  const n = el.n;
  const { hash: nodeHash, load, gpu0: gpu } = index;
  const limit = preferred >= 0 ? MAX_RANKED - 1 : MAX_RANKED;
  if (policy.affinity && req.routingKey) {
    // The rest of the order is the key's runners-up: a conflict on the winner sends the key
    // where it would go if the winner left.
    const order = highestScore(el, nodeHash, rendezvousSeed(req.routingKey), idOf, limit, preferred);
    if (preferred < 0) return { order, choice: 'affinity' };
    order.unshift(preferred);
    return { order, choice: 'preferred' };
  }
  /** Lower load first: (running + reserved) / max, then GPU% (unreported = 0). */
  const lessLoaded = (a: number, b: number): boolean => {
    const la = loadAt(el, load, a);
    const lb = loadAt(el, load, b);
    return la < lb || (la === lb && gpu[a]! < gpu[b]!);
  };
  // The rest of the order is the least loaded others; least_loaded takes its head.
  const order = leastLoaded(el, index.loadOrder, load, gpu, limit, preferred);
  if (preferred >= 0) {
    order.unshift(preferred);
    return { order, choice: 'preferred' };
  }
  let first = -1;
  const random = policy.random ?? Math.random;
  if (policy.strategy === 'random') {
    first = el.slotAt(randomIndex(random, n));
  } else if (policy.strategy === 'p2c' && n > 1) {
    const a = randomIndex(random, n);
    let b = randomIndex(random, n - 1);
    if (b >= a) b++;
    const sa = el.slotAt(a);
    const sb = el.slotAt(b);
    first = lessLoaded(sb, sa) ? sb : sa;
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
