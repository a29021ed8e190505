import type { NodeStatus } from '../../shared/snapshot-entry.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

/**
 * The fleet as this selector's snapshot replica sees it, for the Prometheus gauges
 * `sb_nodes{status}`, `sb_nodes_unavailable{reason}`, `sb_slots{state}`, `sb_pools{state}` and
 * `sb_pool_ready_nodes{pool}` (README "Observing"). Computed at scrape time, O(nodes + pools);
 * pure, no I/O. Every selector exports the same figures: aggregate them with `max`, not `sum`.
 */

/** At most this many `sb_pool_ready_nodes` series per selector: the pools with fewest ready nodes. */
export const POOL_SERIES_LIMIT = 200;

export const NODE_STATUSES: readonly NodeStatus[] = ['registering', 'ready', 'degraded', 'offline'];

export interface FleetFigures {
  /** Nodes in the replica by status (offline ones stay until SB_NODE_RETENTION_MS). */
  nodes: Record<NodeStatus, number>;
  /** Nodes not offline that selection skips anyway: draining, quarantined (one count each). */
  unavailable: { draining: number; quarantined: number };
  /**
   * used = running + reserved (at most max_jobs) over the nodes not offline; free = what is left
   * on the nodes selection may choose (ready, not draining, not quarantined).
   */
  slots: { used: number; free: number };
  /** Directed full pipelines ("zh:en", "auto:en") offered by at least one node of the replica. */
  pools: { withReady: number; withoutReady: number };
  /** Ready nodes per pool, for at most POOL_SERIES_LIMIT pools: those with fewest first, then by name. */
  poolReady: [pool: string, ready: number][];
}

/** Ready for a job: what selection's first filters let through (status, drain, quarantine). */
function selectable(
  e: { status: NodeStatus; draining: boolean; quarantinedUntil?: number },
  now: number,
): boolean {
  return e.status === 'ready' && !e.draining && !((e.quarantinedUntil ?? 0) > now);
}

export function fleetFigures(
  index: SnapshotIndex,
  now: number = Date.now(),
  poolLimit = POOL_SERIES_LIMIT,
): FleetFigures {
  const nodes: Record<NodeStatus, number> = { registering: 0, ready: 0, degraded: 0, offline: 0 };
  const unavailable = { draining: 0, quarantined: 0 };
  const slots = { used: 0, free: 0 };
  const ready = new Set<string>();
  for (const { entry: e } of index.all()) {
    nodes[e.status] = (nodes[e.status] ?? 0) + 1;
    if (e.status === 'offline') continue;
    if (e.draining) unavailable.draining++;
    if ((e.quarantinedUntil ?? 0) > now) unavailable.quarantined++;
    const max = Math.max(0, e.max);
    const used = Math.min(max, Math.max(0, e.running) + Math.max(0, e.reserved));
    slots.used += used;
    if (selectable(e, now)) {
      slots.free += max - used;
      ready.add(e.id);
    }
  }
  const all: [string, number][] = [];
  for (const pool of index.keys('pool')) {
    let n = 0;
    for (const id of index.index('pool', pool)) if (ready.has(id)) n++;
    all.push([pool, n]);
  }
  const withoutReady = all.filter(([, n]) => n === 0).length;
  all.sort(([a, x], [b, y]) => x - y || (a < b ? -1 : a > b ? 1 : 0));
  return {
    nodes,
    unavailable,
    slots,
    pools: { withReady: all.length - withoutReady, withoutReady },
    poolReady: all.slice(0, Math.max(0, poolLimit)),
  };
}
