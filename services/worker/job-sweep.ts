import type { KeyBuilder } from '../../shared/keys.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { JobRecordStore } from '../../shared/store/job-record.ts';
import type { SlotStore } from '../../shared/store/slots.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface JobSweepOptions {
  maxAttempts: number;
  ackTimeoutMs: number;
  /**
   * How long past a slot's own deadline the sweep waits before it looks again: the node-side
   * timeouts (job-timeouts.ts) release it first, within a tick or two.
   */
  marginMs: number;
  /** Most due jobs handled per job shard in one tick; the rest wait for the next. */
  perTick: number;
}

export type SweepOutcome = 'closed' | 'held' | 'waiting' | 'slot_lost' | 'failover_reasked';

/**
 * The job-side safety net (part of the liveness tick, after the node-side timeouts). Every
 * timeout the worker fires starts from the NODE's shard (`:resv`, `:run`); the job record lives
 * on another shard, on Cluster usually another master. Redis replication is asynchronous, so a
 * master that fails over can lose the last writes it acknowledged: a reservation or running job
 * gone from the promoted replica while the job record on another master still says
 * `dispatched`/`accepted` — or a `finished` that never reached the record while the slot was
 * freed, or a failover request lost with the queue's master. Nothing on the node side refers to
 * such a job any more, and it would wait forever.
 *
 * So each job shard keeps `:open`, unfinished job → when to look at it (the placement adds it with
 * its ack deadline plus a margin; failoverJob re-arms it). Per tick, only the due entries:
 *  - gone or terminal → out of the index (sweepJob-2.lua);
 *  - its attempt still holds a reservation or a running slot on its node → look again at that
 *    slot's deadline plus the margin (the node side handles the slot);
 *  - its attempt was failed over and the failover is still queued → look again later; the
 *    failover is not queued any more and the job has not moved on → ask for it again;
 *  - no slot anywhere past the attempt's ack deadline plus the margin → the slot was lost:
 *    failoverJob-3.lua with reason `slot_lost` (next attempt, or JOB_TIMEOUT at the limit).
 */
export class JobSweep {
  constructor(
    private readonly keys: KeyBuilder,
    private readonly stores: { slots: SlotStore; records: JobRecordStore },
    private readonly queues: DerivedWorkQueues,
    private readonly metrics: WorkerMetrics,
    private readonly options: JobSweepOptions,
  ) {}

  /** Every job shard; returns the jobs failed over (slot lost, or failover asked again). */
  async tick(now = Date.now()): Promise<number> {
    let moved = 0;
    for (let shard = 0; shard < this.keys.shards; shard++) moved += await this.tickShard(shard, now);
    return moved;
  }

  async tickShard(shard: number, now: number): Promise<number> {
    const due = await this.stores.records.dueOpen(shard, now, this.options.perTick);
    let moved = 0;
    for (const jobId of due) {
      const outcome = await this.sweep(jobId, now);
      this.metrics.swept.inc({ outcome });
      if (outcome === 'slot_lost' || outcome === 'failover_reasked') moved++;
    }
    return moved;
  }

  private async sweep(jobId: string, now: number): Promise<SweepOutcome> {
    const { marginMs, ackTimeoutMs } = this.options;
    const { records, slots } = this.stores;
    const seen = await records.sweepLook(jobId);
    if (!seen.open) return 'closed';
    const { attempt, node, attemptStatus, dispatchedAt, tried } = seen;
    const later = async (at: number) => {
      await records.sweepAgainAt(jobId, Math.max(at, now + marginMs));
    };

    if (attemptStatus === 'timed_out') {
      // failed over; the next attempt is not recorded yet
      const next = Number(attempt) + 1;
      if (await this.queues.failoverQueued(jobId, next)) {
        await later(now + marginMs);
        return 'waiting';
      }
      // Not queued: lost with its queue's master, or given up by BullMQ. Read again: a failover
      // that ran since would have moved the record on before leaving the queue.
      const again = await records.sweepLook(jobId);
      if (!again.open) return 'closed';
      if (again.attempt !== attempt || again.attemptStatus !== 'timed_out') return 'held';
      await this.queues.requestFailover({ jobId, attempt: next, exclude: JSON.parse(tried) as string[] });
      await later(now + marginMs);
      return 'failover_reasked';
    }

    // a placement in flight (pointed at the node, not reserved yet) gets the ack timeout first
    const since = Number(dispatchedAt);
    if (dispatchedAt !== '' && Number.isFinite(since) && now < since + ackTimeoutMs + marginMs) {
      await later(since + ackTimeoutMs + marginMs);
      return 'held';
    }
    const deadline = node ? await slots.deadline(node, jobId, Number(attempt)) : null;
    if (deadline !== null) {
      await later(deadline + marginMs);
      return 'held';
    }
    const decision = await records.failover({
      jobId,
      attempt: Number(attempt),
      reason: 'slot_lost',
      now,
      maxAttempts: this.options.maxAttempts,
      nextSweepAt: now + marginMs,
    });
    if (decision.kind === 'next')
      await this.queues.requestFailover({ jobId, attempt: Number(attempt) + 1, exclude: decision.tried });
    if (decision.kind === 'none') return 'held'; // moved on meanwhile
    this.metrics.timeouts.inc({ reason: 'slot_lost' });
    return 'slot_lost';
  }
}
