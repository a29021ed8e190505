import type { KeyBuilder } from '../keys.ts';
import type { Logger } from '../logger.ts';
import type { JobShardStore } from './job-shard.ts';
import type { SlotStore } from './slots.ts';

/**
 * Settles placements left unconfirmed: a selector killed (or cut off from Redis) between its
 * claim on the job shard (claimJob-4.lua: the job `dispatched` at attempt 1 on a node, in the
 * shard's `:placing` set) and the confirmation of its reservation on the node shard. Once the
 * placing deadline passed, the node shard is asked once, atomically (fenceReservation-2.lua):
 * the slot is held → placed (the answer recorded at claim stands); none → fenced (a
 * reservation still on its way for that claim is refused) and the job is dropped: its id is
 * retryable. Run by every selector's sweep and by a request that repeats the id.
 */

export type Resolution = 'placed' | 'dropped' | 'pending' | 'gone';

export interface Resolved {
  outcome: Resolution;
  /** the answer kept for repeats, when placed */
  answer: string;
}

export interface RecoveryOptions {
  /** how long a fence outlives its placement: longer than any reservation still on its way */
  fenceTtlMs: number;
  /** placements settled per job shard and sweep */
  batch?: number;
}

export class PlacingRecovery {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> | null = null;

  constructor(
    private readonly keys: KeyBuilder,
    private readonly jobs: JobShardStore,
    private readonly slots: SlotStore,
    private readonly options: RecoveryOptions,
  ) {}

  /**
   * Where the placement of `jobId` stands. Before its deadline only reads (`placed` when its
   * reservation exists, else `pending`); past it, settles it.
   */
  async resolve(jobId: string, now = Date.now()): Promise<Resolved> {
    const st = await this.jobs.placingState(jobId);
    if (!st) return { outcome: 'gone', answer: '' };
    if (st.placingUntil === null) return { outcome: 'placed', answer: st.answer };
    const placed = { outcome: 'placed', answer: st.answer } as const;
    if (st.status !== 'dispatched' || st.attemptId !== 1 || !st.nodeId) {
      await this.jobs.settled(jobId); // acked, failed over or finished: it was placed
      return placed;
    }
    if (st.placingUntil > now) {
      return (await this.slots.isReserved(st.nodeId, jobId, 1)) ? placed : { outcome: 'pending', answer: '' };
    }
    if ((await this.slots.fence(st.nodeId, jobId, st.claimToken, this.options.fenceTtlMs)) === 'held') {
      await this.jobs.settled(jobId);
      return placed;
    }
    // fenced: no slot, none can come; dropped unless it was re-pointed meanwhile (next sweep),
    // or it is another claim now (dropped by a concurrent resolver, claimed anew since)
    const dropped = await this.jobs.drop(jobId, st.nodeId, st.claimToken);
    return { outcome: dropped ? 'dropped' : 'pending', answer: '' };
  }

  /** Settles every placement past its deadline, up to `batch` per job shard. */
  async sweep(now = Date.now()): Promise<Record<Resolution, number>> {
    const counts: Record<Resolution, number> = { placed: 0, dropped: 0, pending: 0, gone: 0 };
    for (let shard = 0; shard < this.keys.shards; shard++) {
      const due = await this.jobs.placingDue(shard, now, this.options.batch ?? 100);
      for (const jobId of due) counts[(await this.resolve(jobId, now)).outcome]++;
    }
    return counts;
  }

  /** Sweeps every `intervalMs` (one sweep at a time; Redis errors wait for the next). */
  start(intervalMs: number, log: Logger, onSettled?: (counts: Record<Resolution, number>) => void): void {
    this.timer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = this.sweep()
        .then((counts) => {
          if (counts.placed + counts.dropped > 0) log.info(counts, 'unconfirmed placements settled');
          onSettled?.(counts);
        })
        .catch(() => undefined)
        .finally(() => (this.sweeping = null));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }
}
