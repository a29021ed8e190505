import { hasBit } from './bitset.ts';
import type { Eligible } from './eligible-nodes.ts';
import { rendezvousScore, rendezvousSeed } from './rendezvous.ts';
import type { SelectionPolicy, SelectionRequest } from './selection-inputs.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

/**
 * Ranking of the eligible nodes (eligible-nodes.ts): the preferred node when eligible; else the
 * routing key's rendezvous winner (affinity); else by strategy (p2c, least_loaded, random) —
 * followed by the next ones to try on a reservation conflict. O(eligible) typed-array work.
 */

/** Eligible nodes returned for the reservation-conflict retry, the chosen one included. */
export const MAX_RANKED = 8;

/** How ranked[0] was chosen; null when nothing is eligible. */
export type Choice = 'preferred' | 'affinity' | SelectionPolicy['strategy'];

/** Load of eligible entry i: the index's, or this selector's known load where it overrides. */
function loadAt(el: Eligible, load: Float64Array, i: number): number {
  const s = el.slots[i]!;
  return el.overrides !== null && hasBit(el.overridden, s) ? el.overrides.get(s)! : load[s]!;
}

/**
 * Indices 0..n-1 (but `skip`), the `k` with the lowest (load, gpu), best first; ties keep index
 * order. One pass, the comparison inline (a comparator callback per node cost more than the
 * rest of a selection together at 10,000+ eligible nodes); a node's load and GPU% are read
 * only when it might enter.
 */
function leastLoaded(el: Eligible, load: Float64Array, gpu: Float64Array, k: number, skip: number): number[] {
  const { n, slots } = el;
  const top: number[] = [];
  const topLoad: number[] = [];
  const topGpu: number[] = [];
  const overrides = el.overrides;
  // the k-th best so far: a node must beat it to enter
  let worstLoad = Infinity;
  let worstGpu = Infinity;
  for (let i = 0; i < n; i++) {
    const s = slots[i]!;
    const l = overrides !== null && hasBit(el.overridden, s) ? overrides.get(s)! : load[s]!;
    if (l > worstLoad) continue;
    const g = gpu[s]!;
    if (top.length === k && !(l < worstLoad || (l === worstLoad && g < worstGpu))) continue;
    if (i === skip) continue;
    let pos = top.length < k ? top.length : k - 1;
    while (pos > 0) {
      const pl = topLoad[pos - 1]!;
      if (!(l < pl || (l === pl && g < topGpu[pos - 1]!))) break;
      top[pos] = top[pos - 1]!;
      topLoad[pos] = pl;
      topGpu[pos] = topGpu[pos - 1]!;
      pos--;
    }
    top[pos] = i;
    topLoad[pos] = l;
    topGpu[pos] = g;
    if (top.length === k) {
      worstLoad = topLoad[k - 1]!;
      worstGpu = topGpu[k - 1]!;
    }
  }
  return top;
}

/**
 * Indices 0..n-1 (but `skip`), the `k` with the highest score, best first; a tie goes to the
 * smaller id (`idOf(slots[i])`, only read on a tie).
 */
function highestScore(
  score: Float64Array,
  slots: Int32Array,
  idOf: (slot: number) => string,
  n: number,
  k: number,
  skip: number,
): number[] {
  const top: number[] = [];
  let worst = -1;
  const higher = (a: number, b: number): boolean =>
    score[a]! > score[b]! || (score[a] === score[b] && idOf(slots[a]!) < idOf(slots[b]!));
  for (let i = 0; i < n; i++) {
    const sc = score[i]!;
    if (sc < worst || i === skip) continue;
    if (top.length === k && !higher(i, top[k - 1]!)) continue;
    let pos = top.length < k ? top.length : k - 1;
    while (pos > 0 && higher(i, top[pos - 1]!)) {
      top[pos] = top[pos - 1]!;
      pos--;
    }
    top[pos] = i;
    if (top.length === k) worst = score[top[k - 1]!]!;
  }
  return top;
}

function randomIndex(random: () => number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.floor(random() * n)));
}

/**
 * Eligible indices in preference order, and how the first was chosen. `el.n` eligible nodes
 * (> 0); `preferred` = the preferred node's index among them, or -1; `idOf(slot)` its id.
 */
export function rank(
  el: Eligible,
  index: Pick<SnapshotIndex, 'hash' | 'load' | 'gpu0'>,
  idOf: (slot: number) => string,
  preferred: number,
  req: SelectionRequest,
  policy: SelectionPolicy,
): { order: number[]; choice: Choice } {
  const n = el.n;
  const { slots, score } = el;
  const { hash: nodeHash, load, gpu0: gpu } = index;
  const limit = preferred >= 0 ? MAX_RANKED - 1 : MAX_RANKED;
  if (policy.affinity && req.routingKey) {
    // The rest of the order is the key's runners-up: a conflict on the winner sends the key
    // where it would go if the winner left.
    const seed = rendezvousSeed(req.routingKey);
    for (let i = 0; i < n; i++) score[i] = rendezvousScore(seed, nodeHash[slots[i]!]!);
    // higher score first; a tie goes to the smaller id
    const order = highestScore(score, slots, idOf, n, limit, preferred);
    if (preferred < 0) return { order, choice: 'affinity' };
    order.unshift(preferred);
    return { order, choice: 'preferred' };
  }
  /** Lower load first: (running + reserved) / max, then GPU% (unreported = 0). */
  const lessLoaded = (a: number, b: number): boolean => {
    const la = loadAt(el, load, a);
    const lb = loadAt(el, load, b);
    return la < lb || (la === lb && gpu[slots[a]!]! < gpu[slots[b]!]!);
  };
  // The rest of the order is the least loaded others; least_loaded takes its head.
  const order = leastLoaded(el, load, gpu, limit, preferred);
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
