import type { KeyBuilder } from '../../shared/keys.ts';
import { languageProfile, pipelinePools, type LanguageCapabilities } from '../../shared/language-pairs.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
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
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly queues: DerivedWorkQueues,
    private readonly metrics: WorkerMetrics,
  ) {}

  async index(nodeId: string): Promise<PoolIndexOutcome> {
    const k = this.keys.forNode(nodeId);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const [status, capLang, stored] = await this.redis.hmget(k.node(nodeId), 'status', 'cap_lang', 'pools');
      if (status === null) return this.done('gone');
      const removing = status === 'removed';
      const next =
        removing || status === 'offline' ? [] : pipelinePools(languageProfile(parseLang(capLang ?? null)));
      const current = new Set<string>(stored ? (JSON.parse(stored) as string[]) : []);
      const wanted = new Set(next);
      const joined = next.filter((p) => !current.has(p));
      const left = [...current].filter((p) => !wanted.has(p));
      if (!removing && stored !== null && joined.length === 0 && left.length === 0)
        return this.done('unchanged');

      const keys = [k.node(nodeId), k.pools, k.dirty, ...[...joined, ...left].map((pool) => k.pool(pool))];
      const [code, dirtyWasEmpty] = await this.redis.applyPoolIndex(
        keys.length,
        ...keys,
        nodeId,
        stored ?? '',
        JSON.stringify(next),
        joined.length,
        ...joined,
        ...left,
        removing ? '1' : '0',
      );
      if (code === -1) return this.done('gone');
      if (code === 1) {
        if (dirtyWasEmpty === 1) await this.queues.requestFlush(k.shard);
        return this.done('changed');
      }
      // 0: the stored pools changed between our read and the script; read again
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
