import type { SlotCountStore } from '../../shared/store/snapshot.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface RecountOptions {
  /**
   * The backstop: a full pass over a shard's nodes is spread over this many liveness ticks, and
   * starts at most once per as many (120: every node every 10 minutes at the default tick).
   */
  sweepTicks: number;
}

type Held = { reserved: number; committed: number };
const NONE: Held = { reserved: 0, committed: 0 };

/**
 * Reconciliation of the slot counters (ARCHITECTURE.md "Timeouts, failover, reconciliation"):
 * every slot change is an atomic script, so a node's `reserved` / `committed` agree with the
 * reservations (`:resv`) and running jobs (`:run`) the shard holds for it, unless something went
 * around the scripts (a record deleted and registered again while jobs were held, a hand edit, a
 * bug); the recount finds such drift and corrects it atomically (`reconcileNode-3.lua`), so no
 * slot stays leaked. It costs O(what changed), not O(fleet), per liveness tick:
 *
 *  - changed: per shard, what `:resv` / `:run` hold per node is read (O(jobs in flight); nothing
 *    when both are empty) and compared with what this process read at its previous check; the
 *    counters of the nodes whose holdings changed (new, different, or gone: those must now be 0)
 *    are checked;
 *  - backstop: a step of about `nodes / sweepTicks` ids per shard over its nodes (`:live`, then
 *    `:offline`: SlotCountStore.scanNodes; a cursor per shard) is
 *    checked as well, whatever changed, so drift on a node whose holdings did not change (a
 *    counter raised with nothing held) is found within one pass; a pass starts at most once per
 *    `sweepTicks` ticks.
 *
 * A check compares the counters with the holdings; a node that disagrees is recounted by the
 * script (the quick check is not atomic). The state is this process's (several workers each
 * keep their own). `sb_slots_recounted_total` counts the nodes checked.
 */
export class SlotRecount {
  private readonly cursors = new Map<number, { cursor: string; startedAt: number }>();
  /** Per shard, the holdings read at the previous check (nodes holding something only). */
  private readonly lastHeld = new Map<number, Map<string, Held>>();
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

  /** The shard's check for this tick. Returns the nodes checked and the nodes corrected. */
  async recountShard(shard: number): Promise<{ checked: number; corrected: number }> {
    const held = await this.store.heldSlots(shard);
    const ids = new Set(this.changedSince(shard, held));
    for (const id of await this.sweepSlice(shard)) ids.add(id);
    if (ids.size === 0) {
      this.lastHeld.set(shard, held);
      return { checked: 0, corrected: 0 };
    }

    const list = [...ids];
    const counters = await this.store.slotCounters(shard, list);
    let corrected = 0;
    for (let i = 0; i < list.length; i++) {
      const expected = held.get(list[i]!) ?? NONE;
      const c = counters[i]!;
      if (c.reserved === expected.reserved && c.committed === expected.committed) continue;
      // the quick check is not atomic; the script recounts atomically before correcting
      if (await this.store.reconcileNode(shard, list[i]!)) corrected++;
    }
    // only now: a check cut short (Redis error) is made again at the next tick
    this.lastHeld.set(shard, held);
    this.metrics.recounted.inc(list.length);
    if (corrected > 0) this.metrics.reconciled.inc(corrected);
    return { checked: list.length, corrected };
  }

  /** Nodes whose holdings differ from the previous check's (all of them at the first). */
  private changedSince(shard: number, held: Map<string, Held>): string[] {
    const last = this.lastHeld.get(shard) ?? new Map<string, Held>();
    const changed: string[] = [];
    for (const [id, now] of held) {
      const before = last.get(id);
      if (!before || before.reserved !== now.reserved || before.committed !== now.committed) changed.push(id);
    }
    for (const id of last.keys()) if (!held.has(id)) changed.push(id);
    return changed;
  }

  /** The backstop's step for this tick (none between passes). */
  private async sweepSlice(shard: number): Promise<string[]> {
    const { sweepTicks } = this.options;
    let state = this.cursors.get(shard);
    if (state === undefined || (state.cursor === '0' && this.tick - state.startedAt >= sweepTicks)) {
      state = { cursor: '0', startedAt: this.tick };
      this.cursors.set(shard, state);
    } else if (state.cursor === '0') {
      return []; // this pass is over; the next starts later
    }
    const total = await this.store.nodeCount(shard);
    const { cursor, ids } = await this.store.scanNodes(
      shard,
      state.cursor,
      Math.max(1, Math.ceil(total / sweepTicks)),
    );
    state.cursor = cursor;
    return ids;
  }
}
