import type { SlotCountStore } from '../../shared/store/snapshot.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface RecountOptions {
  /** A full pass over a shard's nodes is spread over this many liveness ticks, and starts at most once per as many. */
  everyTicks: number;
}

/**
 * Reconciliation of the slot counters, spread over ticks (issue 13: it was the whole fleet in
 * one burst every 12th tick, ~20 µs of worker CPU per node). Each tick, per shard, an SSCAN
 * step of about `nodes / everyTicks` ids (a cursor per shard) compares the nodes' `reserved` /
 * `committed` with the reservations and running jobs the shard holds; a node that disagrees is
 * recounted atomically by `reconcileNode-3.lua`. A shard's pass ends when its cursor comes back
 * to 0, and the next one starts `everyTicks` ticks after the previous one started: each node is
 * checked once per `everyTicks` ticks (a minute at the defaults), a slice at a time. The cursors
 * are this process's (several workers each walk the shards at their own pace).
 */
export class SlotRecount {
  private readonly cursors = new Map<number, { cursor: string; startedAt: number }>();
  private tick = 0;

  constructor(
    private readonly store: SlotCountStore,
    private readonly metrics: WorkerMetrics,
    private readonly options: RecountOptions,
  ) {}

  /** Call once per liveness tick, before the shards' `recountShard`. */
  nextTick(): void {
    this.tick++;
  }

  /** One slice of the shard's pass. Returns the nodes checked and the nodes corrected. */
  async recountShard(shard: number): Promise<{ checked: number; corrected: number }> {
    const { everyTicks } = this.options;
    let state = this.cursors.get(shard);
    if (state === undefined || (state.cursor === '0' && this.tick - state.startedAt >= everyTicks)) {
      state = { cursor: '0', startedAt: this.tick };
      this.cursors.set(shard, state);
    } else if (state.cursor === '0') {
      return { checked: 0, corrected: 0 }; // this pass is over; the next starts later
    }
    const total = await this.store.nodeCount(shard);
    const { cursor, ids } = await this.store.scanNodes(
      shard,
      state.cursor,
      Math.max(1, Math.ceil(total / everyTicks)),
    );
    state.cursor = cursor;
    if (ids.length === 0) return { checked: 0, corrected: 0 };

    const held = await this.store.heldSlots(shard);
    const counters = await this.store.slotCounters(shard, ids);
    let corrected = 0;
    for (let i = 0; i < ids.length; i++) {
      const expected = held.get(ids[i]!) ?? { reserved: 0, committed: 0 };
      const c = counters[i]!;
      if (c.reserved === expected.reserved && c.committed === expected.committed) continue;
      // the quick check is not atomic; the script recounts atomically before correcting
      if (await this.store.reconcileNode(shard, ids[i]!)) corrected++;
    }
    this.metrics.recounted.inc(ids.length);
    if (corrected > 0) this.metrics.reconciled.inc(corrected);
    return { checked: ids.length, corrected };
  }
}
