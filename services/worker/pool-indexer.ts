import type { KeyBuilder } from '../../shared/keys.ts';
import { languageProfile, pipelinePools, type LanguageCapabilities } from '../../shared/language-pairs.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { PoolIndexStore } from '../../shared/store/snapshot.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

const CAS_ATTEMPTS = 5;

export type PoolIndexOutcome = 'changed' | 'unchanged' | 'gone';

/**
 * Rebuilds one node's pool membership from its CURRENT language capabilities (the job only
 * names the node): computes the directed pipeline pools, diffs them against the stored ones
 * and applies the diff in one script. Runs on a real capability change, and when the node goes
 * offline or comes back: an offline node is in no pool (its entries do not wait the
 * SB_NODE_RETENTION_MS until removal), a node back is in its pools again.
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
      const { status, capLang, stored } = await this.store.read(shard, nodeId);
      if (status === null) return this.done('gone');
      const removing = status === 'removed';
      const next = removing || status === 'offline' ? [] : pipelinePools(languageProfile(parseLang(capLang)));
      const current = new Set<string>(stored ? (JSON.parse(stored) as string[]) : []);
      const wanted = new Set(next);
      const joined = next.filter((p) => !current.has(p));
      const left = [...current].filter((p) => !wanted.has(p));
      if (!removing && stored !== null && joined.length === 0 && left.length === 0)
        return this.done('unchanged');

      const { code, dirtyWasEmpty } = await this.store.apply(shard, nodeId, {
        expected: stored ?? '',
        next,
        joined,
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

function parseLang(text: string | null): LanguageCapabilities {
  if (!text) return {};
  try {
    return JSON.parse(text) as LanguageCapabilities;
  } catch {
    return {};
  }
}
