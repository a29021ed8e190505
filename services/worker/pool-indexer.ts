import type { KeyBuilder } from '../../shared/keys.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { PoolIndexStore } from '../../shared/store/snapshot.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

const CAS_ATTEMPTS = 5;

export type PoolIndexOutcome = 'changed' | 'unchanged' | 'gone';

/**
 * The pool-index job (the job only names the node), since issue 13 a clean-up: a node's pools
 * are derived from its languages by the flush (shared/snapshot-entry.ts), and the per-shard pool
 * sets, which nothing read, are written no more. It deletes a removed node's record (releasing
 * its capability blobs: applyPoolIndex-5+.lua), and takes a record of the old layout out of the
 * pool sets it was in (its stored `pools`). Runs on a capability change, when the node goes
 * offline or comes back, and on removal.
 */
export class PoolIndexer {
  constructor(
    private readonly store: PoolIndexStore,
    private readonly keys: KeyBuilder,
    private readonly queues: DerivedWorkQueues,
    private readonly metrics: WorkerMetrics,
  ) {}

  async index(nodeId: string): Promise<PoolIndexOutcome> {
    const shard = this.keys.shardOf(nodeId);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const { status, stored } = await this.store.read(shard, nodeId);
      if (status === null) return this.done('gone');
      const removing = status === 'removed';
      if (!removing && stored === null) return this.done('unchanged');
      const left = stored ? (JSON.parse(stored) as string[]) : [];
      const { code, dirtyWasEmpty } = await this.store.apply(shard, nodeId, {
        expected: stored ?? '',
        next: [],
        joined: [],
        left,
        remove: removing,
      });
      if (code === 'gone') return this.done('gone');
      if (code === 'applied') {
        if (dirtyWasEmpty) await this.queues.requestFlush(shard);
        return this.done('changed');
      }
      // conflict: the stored pools changed between our read and the script; read again
    }
    throw new Error(`pools of ${nodeId} kept changing during ${CAS_ATTEMPTS} attempts`);
  }

  private done(outcome: PoolIndexOutcome): PoolIndexOutcome {
    this.metrics.poolIndex.inc({ outcome });
    return outcome;
  }
}
