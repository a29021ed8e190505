import type { KeyBuilder } from '../../shared/keys.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import type { JobTimeouts } from './job-timeouts.ts';
import type { SlotRecount } from './slot-recount.ts';
import type { RetentionStore } from '../../shared/store/snapshot.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface ReaperOptions {
  nodeTtlMs: number;
  retentionMs: number;
  /** Most nodes handled per shard and kind in one tick; the rest wait for the next. */
  perTick: number;
}

export interface TickResult {
  offline: number;
  removed: number;
  flushesRequested: number;
  timedOut: number;
  /** Nodes whose slot counters this tick checked (those whose holdings changed + the backstop's slice). */
  recounted: number;
  reconciled: number;
}

/**
 * The liveness tick (once per SB_REAPER_INTERVAL_MS for the whole deployment, via a BullMQ
 * job scheduler), per shard:
 *  - nodes silent for longer than SB_NODE_TTL_MS → offline (unless they heartbeat meanwhile;
 *    the flush publishes them with no pools);
 *  - nodes offline for longer than SB_NODE_RETENTION_MS → removed: record deleted, blob
 *    references released, the removal published by the next flush (one script);
 *  - job attempts past their ack or job timeout, or on a node gone offline, fail over
 *    (JobTimeouts);
 *  - the slot counters of the nodes whose reservations or running jobs changed since the last
 *    tick, and of a thin backstop slice of each shard, are checked against what is held
 *    (SlotRecount: O(changed) per tick, every node once per backstop pass);
 *  - a dirty or taken set without a pending flush (a producer crashed between its script and
 *    its enqueue, or a flush crashed) gets a flush: no dirty node is stranded.
 */
export class LivenessReaper {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly queues: DerivedWorkQueues,
    private readonly metrics: WorkerMetrics,
    private readonly timeouts: JobTimeouts,
    private readonly recount: SlotRecount,
    private readonly retention: RetentionStore,
    private readonly options: ReaperOptions,
  ) {}

  async tick(now = Date.now()): Promise<TickResult> {
    const result: TickResult = {
      offline: 0,
      removed: 0,
      flushesRequested: 0,
      timedOut: 0,
      recounted: 0,
      reconciled: 0,
    };
    const started = performance.now();
    this.recount.nextTick();
    for (let shard = 0; shard < this.keys.shards; shard++) {
      await this.tickShard(shard, now, result);
      const { checked, corrected } = await this.recount.recountShard(shard);
      result.recounted += checked;
      result.reconciled += corrected;
    }
    this.metrics.reaperTicks.inc();
    this.metrics.reaperTickSeconds.observe((performance.now() - started) / 1000);
    return result;
  }

  private async tickShard(shard: number, now: number, result: TickResult): Promise<void> {
    const k = this.keys.shard(shard);
    const { nodeTtlMs, retentionMs, perTick } = this.options;
    const silentSince = now - nodeTtlMs;
    let offline = 0;
    for (const id of await this.redis.zrangebyscore(k.live, '-inf', silentSince, 'LIMIT', 0, perTick)) {
      const [code] = await this.redis.markOffline(
        k.node(id),
        k.live,
        k.offline,
        k.dirty,
        id,
        '',
        now,
        silentSince,
      );
      if (code === -1) await this.redis.zrem(k.live, id); // a record that is gone leaves no trace
      if (code === 1) offline++;
    }
    const removeBefore = now - retentionMs;
    let removed = 0;
    for (const id of await this.redis.zrangebyscore(k.offline, '-inf', removeBefore, 'LIMIT', 0, perTick)) {
      if ((await this.retention.removeNode(shard, id, removeBefore)).removed) removed++;
    }
    this.metrics.reaped.inc({ kind: 'offline' }, offline);
    this.metrics.reaped.inc({ kind: 'removed' }, removed);
    result.offline += offline;
    result.removed += removed;
    result.timedOut += await this.timeouts.tickShard(shard, now);
    const [dirty, taken] = await Promise.all([this.redis.scard(k.dirty), this.redis.exists(k.dirtyTaken)]);
    if (dirty > 0 || taken > 0) {
      await this.queues.requestFlush(shard);
      result.flushesRequested++;
    }
  }
}
