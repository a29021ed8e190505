/**
 * What became of placed jobs the client gave up on: read from Redis after the run, each job
 * record's status and whether its node still holds the attempt (a reservation or a running
 * slot, which the worker would time out). A job neither finished nor failed whose attempt no
 * node holds will never end: nothing is left to time it out (e.g. its job_result was dropped as
 * stale while the slot was released).
 */
import type { Redis } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';

export interface UnresolvedJobs {
  /** By the job record's status (`missing`: no record). */
  byStatus: Record<string, number>;
  /** Non-terminal, attempt held by no node: stuck for good. */
  stuck: number;
  /** Non-terminal, attempt still held: would time out or finish later. */
  held: number;
  /** Stuck jobs (at most 20): their record's dispatched_at (selector's Date.now()). */
  stuckJobs: { id: string; status: string; node: string | null; dispatchedAt: number | null }[];
}

export async function inspectUnresolved(
  redis: Redis,
  keys: KeyBuilder,
  ids: string[],
): Promise<UnresolvedJobs> {
  const out: UnresolvedJobs = { byStatus: {}, stuck: 0, held: 0, stuckJobs: [] };
  const held = new Map<string, string[]>();
  const membersOf = async (key: string): Promise<string[]> => {
    let members = held.get(key);
    if (!members) {
      members = await redis.zrange(key, '0', '-1');
      held.set(key, members);
    }
    return members;
  };
  for (const id of ids) {
    const [status, nodeId, dispatched] = await redis.hmget(
      keys.job(id),
      'status',
      'node_id',
      'dispatched_at',
    );
    const s = status ?? 'missing';
    out.byStatus[s] = (out.byStatus[s] ?? 0) + 1;
    if (s === 'finished' || s === 'failed' || s === 'missing') continue;
    let holding = false;
    if (nodeId) {
      const k = keys.forNode(nodeId);
      for (const key of [k.reservations, k.running]) {
        if ((await membersOf(key)).some((m) => m.startsWith(`${id}|`))) holding = true;
      }
    }
    if (holding) out.held++;
    else {
      out.stuck++;
      if (out.stuckJobs.length < 20) {
        out.stuckJobs.push({
          id,
          status: s,
          node: nodeId ?? null,
          dispatchedAt: dispatched ? Number(dispatched) : null,
        });
      }
    }
  }
  return out;
}
