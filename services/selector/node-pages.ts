import type { ReplicaNode } from './snapshot-index.ts';

/**
 * One page of `GET /v1/nodes`: the `limit` nodes with the smallest ids after `after`, in id
 * order, and whether more follow. One pass over the replica keeping a sorted window of
 * `limit + 1` nodes (no sort of the whole fleet): O(n + limit · log(n / limit)) insertions.
 */
export function nodePage(
  nodes: Iterable<ReplicaNode>,
  after: string | undefined,
  limit: number,
): { page: ReplicaNode[]; more: boolean } {
  const window: ReplicaNode[] = [];
  const keep = limit + 1;
  for (const node of nodes) {
    const id = node.entry.id;
    if (after !== undefined && id <= after) continue;
    if (window.length === keep && id >= window[keep - 1]!.entry.id) continue;
    let lo = 0;
    let hi = window.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (window[mid]!.entry.id < id) lo = mid + 1;
      else hi = mid;
    }
    window.splice(lo, 0, node);
    if (window.length > keep) window.pop();
  }
  const more = window.length > limit;
  if (more) window.pop();
  return { page: window, more };
}
