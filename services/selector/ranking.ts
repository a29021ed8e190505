import type { Eligible } from './eligible-nodes.ts';
import { rendezvousScore, rendezvousSeed } from './rendezvous.ts';
import type { SelectionPolicy, SelectionRequest } from './selection-inputs.ts';

/**
 * Ranking of the eligible nodes (eligible-nodes.ts): the preferred node when eligible; else the
 * routing key's rendezvous winner (affinity); else by strategy (p2c, least_loaded, random) —
 * followed by the next ones to try on a reservation conflict. O(eligible) typed-array work.
 */

/** Eligible nodes returned for the reservation-conflict retry, the chosen one included. */
export const MAX_RANKED = 8;

/** How ranked[0] was chosen; null when nothing is eligible. */
export type Choice = 'preferred' | 'affinity' | SelectionPolicy['strategy'];

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

function randomIndex(random: () => number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.floor(random() * n)));
}

/**
 * Eligible indices in preference order, and how the first was chosen. `el.n` eligible nodes
 * (> 0); `preferred` = the preferred node's index among them, or -1; `idOf(slot)` its id.
 */
export function rank(
  el: Eligible,
  nodeHash: Uint32Array,
  idOf: (slot: number) => string,
  preferred: number,
  req: SelectionRequest,
  policy: SelectionPolicy,
): { order: number[]; choice: Choice } {
  const n = el.n;
  const { slots, load, gpu, score } = el;
  const limit = preferred >= 0 ? MAX_RANKED - 1 : MAX_RANKED;
  if (policy.affinity && req.routingKey) {
    // The rest of the order is the key's runners-up: a conflict on the winner sends the key
    // where it would go if the winner left.
    const seed = rendezvousSeed(req.routingKey);
    for (let i = 0; i < n; i++) score[i] = rendezvousScore(seed, nodeHash[slots[i]!]!);
    // higher score first; a tie goes to the smaller id
    const higherScore = (a: number, b: number): boolean =>
      score[a]! > score[b]! || (score[a] === score[b] && idOf(slots[a]!) < idOf(slots[b]!));
    const order = topK(n, limit, higherScore, preferred);
    if (preferred < 0) return { order, choice: 'affinity' };
    order.unshift(preferred);
    return { order, choice: 'preferred' };
  }
  /** Lower load first: (running + reserved) / max, then GPU% (unreported = 0). */
  const lessLoaded = (a: number, b: number): boolean =>
    load[a]! < load[b]! || (load[a] === load[b] && gpu[a]! < gpu[b]!);
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
