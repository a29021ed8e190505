import type { KeyBuilder } from '../../shared/keys.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { NodeQuarantine } from '../../shared/quarantine.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import { jobCancelFrame } from '../../shared/protocol/outbound-frames.ts';
import type { JobRecordStore } from '../../shared/store/job-record.ts';
import type { SlotKind, SlotStore } from '../../shared/store/slots.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface TimeoutOptions {
  maxAttempts: number;
  /** Most expired slots handled per shard and kind in one tick; the rest wait for the next. */
  perTick: number;
  streamCap: number;
  /**
   * A timeout found later than this after its deadline is not counted against the node
   * (quarantine): the liveness tick was not running (a Redis outage, no worker).
   */
  lateToleranceMs: number;
  /** The job sweep looks at a failed-over job again this long after (job-sweep.ts). */
  sweepMarginMs: number;
}

type Kind = SlotKind;
type Reason = 'ack_timeout' | 'job_timeout' | 'node_offline';

/**
 * Part of the liveness tick, per shard: reservations not acked within SB_ACK_TIMEOUT_MS,
 * running jobs without a result within SB_JOB_TIMEOUT_MS, and anything held by a node that
 * went offline are released (the node gets job_cancel), and the job fails over:
 * a selector places the next attempt on a node not tried yet, until SB_MAX_ATTEMPTS, then the
 * job fails with JOB_TIMEOUT.
 */
export class JobTimeouts {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly stores: { slots: SlotStore; records: JobRecordStore },
    private readonly queues: DerivedWorkQueues,
    private readonly metrics: WorkerMetrics,
    private readonly options: TimeoutOptions,
    /** Counts ack and job timeouts against the node (README "Quarantine"). */
    private readonly quarantine: NodeQuarantine | null = null,
  ) {}

  async tickShard(shard: number, now: number): Promise<number> {
    const k = this.keys.shard(shard);
    const { perTick } = this.options;
    let handled = 0;
    const due = async (kind: Kind, key: string, reason: Reason) => {
      const found = await this.redis.zrangebyscore(key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, perTick);
      for (let i = 0; i < found.length; i += 2) {
        // expired long ago: the worker was not watching (Redis down, no worker), not the node's fault
        const onTime = now - Number(found[i + 1]) <= this.options.lateToleranceMs;
        if (await this.expire(kind, found[i]!, reason, now, onTime)) handled++;
      }
    };
    await due('reservation', k.reservations, 'ack_timeout');
    await due('running', k.running, 'job_timeout');

    // a node that went offline with jobs in flight: fail them over at once
    const held: [Kind, string][] = [
      ...(await this.redis.zrange(k.reservations, '0', String(perTick - 1))).map((m): [Kind, string] => [
        'reservation',
        m,
      ]),
      ...(await this.redis.zrange(k.running, '0', String(perTick - 1))).map((m): [Kind, string] => [
        'running',
        m,
      ]),
    ];
    const nodes = [...new Set(held.map(([, m]) => parseMember(m).node))];
    const statuses = await Promise.all(nodes.map((n) => this.redis.hget(k.node(n), 'status')));
    const gone = new Set(
      nodes.filter((_, i) => statuses[i] === null || statuses[i] === 'offline' || statuses[i] === 'removed'),
    );
    for (const [kind, member] of held) {
      if (gone.has(parseMember(member).node) && (await this.expire(kind, member, 'node_offline', now)))
        handled++;
    }
    return handled;
  }

  private async expire(
    kind: Kind,
    member: string,
    reason: Reason,
    now: number,
    blameNode = false,
  ): Promise<boolean> {
    const { job, node, attempt } = parseMember(member);
    const cancel = jobCancelFrame(job, attempt, reason);
    const expired = await this.stores.slots.expire(node, job, kind, member, cancel, this.options.streamCap);
    if (!expired) return false; // the node acked or finished first
    this.metrics.timeouts.inc({ reason });
    // an offline node is out of selection anyway; a live one that let the deadline pass is at fault
    if (blameNode && reason !== 'node_offline') await this.quarantine?.fault(node, reason);
    const decision = await this.stores.records.failover({
      jobId: job,
      attempt,
      reason,
      now,
      maxAttempts: this.options.maxAttempts,
      nextSweepAt: now + this.options.sweepMarginMs,
    });
    if (decision.kind === 'next')
      await this.queues.requestFailover({ jobId: job, attempt: attempt + 1, exclude: decision.tried });
    return true;
  }
}

/** "<job>|<node>|<attempt>[|<inbox entry>]" — job ids may not contain '|', node ids cannot. */
function parseMember(member: string): { job: string; node: string; attempt: number } {
  const parts = member.split('|');
  return { job: parts[0]!, node: parts[1]!, attempt: Number(parts[2]) };
}
