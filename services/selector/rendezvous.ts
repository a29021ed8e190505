/**
 * Rendezvous (highest-random-weight) hashing for routing-key affinity: a key goes to the node
 * with the highest score(key, node) among the eligible ones. Only the key's own winner
 * matters, so adding, changing or removing any other node never moves the key; removing the
 * winner moves only the keys it won, each to its own runner-up.
 *
 * score = fmix32(seed(key) ⊕ hash(nodeId)), both halves FNV-1a-32 over UTF-16 code units
 * finished by the murmur3 finaliser (the avalanche FNV lacks on short suffixes: node ids often
 * differ only in their last characters), from different offsets so that a key equal to a node
 * id is not special. The node half is computed once per upsert (snapshot-index.ts), so scoring
 * every eligible node of a selection costs a few integer operations each. fmix32 is a
 * bijection: two nodes tie only when their 32-bit hashes collide; a tie goes to the smaller id.
 * Not cryptographic: affinity, not security.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Offset of the node half (the key half starts from FNV_OFFSET). */
const NODE_OFFSET = 0x9e3779b9;

function fnv1a(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

/** The murmur3 finaliser. Inlined in ranking.ts (highestScore): change both together. */
function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The key half; compute once per selection. */
export function rendezvousSeed(key: string): number {
  return fmix32(fnv1a(FNV_OFFSET, key));
}

/** The node half; computed once per snapshot entry. */
export function rendezvousNodeHash(nodeId: string): number {
  return fmix32(fnv1a(NODE_OFFSET, nodeId));
}

/** The node's weight for the seeded key: an unsigned 32-bit integer. */
export function rendezvousScore(seed: number, nodeHash: number): number {
  return fmix32(seed ^ nodeHash);
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
    const score = rendezvousScore(seed, rendezvousNodeHash(id));
    if (best === undefined || rendezvousBeats(score, id, bestScore, best)) {
      best = id;
      bestScore = score;
    }
  }
  return best;
}
