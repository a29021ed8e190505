import { commandNotRun } from '../../shared/errors.ts';
import type { KeyBuilder } from '../../shared/keys.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import type { JobStore } from './job-store.ts';

export type CutOutcome = 'placed' | 'released' | 'moved_on' | 'unknown';

type Deps = { redis: RedisClient; keys: KeyBuilder; jobs: JobStore };

/**
 * A first placement failed with `err` after its job record was pointed at a node: when Redis
 * certainly did not run the command and nothing was reserved, the id is given back now;
 * otherwise the placement is settled in the background (settleCutPlacement).
 */
export async function placementCut(
  deps: Deps,
  err: unknown,
  reserved: boolean,
  cut: { jobId: string; nodeId: string; placement: unknown },
): Promise<void> {
  if (!reserved && commandNotRun(err)) await deps.jobs.release(cut.jobId).catch(() => undefined);
  else void settleCutPlacement(deps, cut);
}

/**
 * Settles, in the background, a first placement that a Redis error cut short after its job
 * record was pointed at `nodeId` — an error after which the command may still have run (a
 * timeout, a lost connection), so the request could only answer 503. Without this the job stays
 * `dispatched` with no answer recorded, and every repeat of its job_id hears "still being
 * placed" until the record expires. Once Redis answers:
 *  - the reservation exists, or the job moved on (acked, failed over, finished): the placement is
 *    recorded, and a repeat of the job_id gets it;
 *  - the job is still `dispatched` at attempt 1 on `nodeId` without a reservation: the
 *    reservation never ran (these reads go on the same connections as the writes they follow,
 *    so a write still on its way would have run first), and nothing can move the job any more:
 *    the id is given back (a repeat places it anew). One still `created` (the record's write
 *    did not run) is left to createJob-2.lua, which lets a repeat claim it again.
 * Retries every `retryMs` for at most `giveUpMs`.
 */
export async function settleCutPlacement(
  deps: Deps,
  cut: { jobId: string; nodeId: string; placement: unknown },
  { retryMs = 250, giveUpMs = 60_000 } = {},
): Promise<CutOutcome> {
  const { redis, keys, jobs } = deps;
  const { jobId, nodeId } = cut;
  const deadline = Date.now() + giveUpMs;
  while (Date.now() < deadline) {
    try {
      const held = await redis.get(keys.forNode(nodeId).reservation(jobId));
      const [status, node, attempt, placement] = await redis.hmget(
        keys.job(jobId),
        'status',
        'node_id',
        'attempt_id',
        'placement',
      );
      // gone, answered, or never pointed at the node (a repeat claims it again: createJob-2.lua)
      if (status === null || placement || status === 'created') return 'moved_on';
      const untouched = status === 'dispatched' && node === nodeId && attempt === '1';
      if (held?.startsWith(`${nodeId}|1|`) || !untouched) {
        await jobs.recordPlacement(jobId, cut.placement);
        return 'placed';
      }
      await jobs.release(jobId);
      return 'released';
    } catch {
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
  return 'unknown';
}
