/**
 * Rendezvous (highest-random-weight) hashing for routing-key affinity: a key goes to the node
 * with the highest score(key, node) among the eligible ones. Only the key's own winner
 * matters, so adding, changing or removing any other node never moves the key; removing the
 * winner moves only the keys it won, each to its own runner-up.
 *
 * score = fmix32(FNV-1a-32(key ‖ 0xffff ‖ nodeId)): FNV-1a is fast and allocation-free over
 * UTF-16 code units; the murmur3 finaliser gives it the avalanche FNV lacks on short suffixes
 * (node ids often differ only in their last characters). 0xffff is not a character of a node
 * id, so it separates the key from the id. Not cryptographic: affinity, not security.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const SEPARATOR = 0xffff;

function fnv1a(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

/** The hash state after `key` and the separator; compute once per selection. */
export function rendezvousSeed(key: string): number {
  return Math.imul(fnv1a(FNV_OFFSET, key) ^ SEPARATOR, FNV_PRIME);
}

/** The node's weight for the seeded key: an unsigned 32-bit integer. */
export function rendezvousScore(seed: number, nodeId: string): number {
  let h = fnv1a(seed, nodeId);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Does (scoreA, idA) beat (scoreB, idB)? Higher score wins; a tie goes to the smaller id. */
export function rendezvousBeats(scoreA: number, idA: string, scoreB: number, idB: string): boolean {
  return scoreA > scoreB || (scoreA === scoreB && idA < idB);
}

/** The winner for `key` among `nodeIds` (undefined when empty). */
export function rendezvousPick(key: string, nodeIds: Iterable<string>): string | undefined {
  const seed = rendezvousSeed(key);
  let best: string | undefined;
  let bestScore = -1;
  for (const id of nodeIds) {
    const score = rendezvousScore(seed, id);
    if (best === undefined || rendezvousBeats(score, id, bestScore, best)) {
      best = id;
      bestScore = score;
    }
  }
  return best;
}
