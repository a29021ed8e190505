/**
 * Unions of SnapshotIndex sets, read without building them: membership, deduplicated
 * iteration and sizes, with no allocation.
 */

export type Sets = readonly ReadonlySet<string>[];

/** Is `id` in the union? */
export function inUnion(sets: Sets, id: string): boolean {
  for (let i = 0; i < sets.length; i++) if (sets[i]!.has(id)) return true;
  return false;
}

/** Is `id`, a member of sets[i], also in an earlier set? (dedupe without allocating) */
export function seenBefore(sets: Sets, i: number, id: string): boolean {
  for (let j = 0; j < i; j++) if (sets[j]!.has(id)) return true;
  return false;
}

export function unionSize(sets: Sets): number {
  if (sets.length === 1) return sets[0]!.size;
  let n = 0;
  for (let i = 0; i < sets.length; i++) for (const id of sets[i]!) if (!seenBefore(sets, i, id)) n++;
  return n;
}

/** Upper bound of the union's size: the sizes summed, duplicates counted again. */
export function sizeSum(sets: Sets): number {
  let n = 0;
  for (let i = 0; i < sets.length; i++) n += sets[i]!.size;
  return n;
}
