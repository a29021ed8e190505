import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import { SnapshotReplica } from '../../services/selector/snapshot-replica.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { encodeEntry, type SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { SnapshotStore, upsertOf } from '../../shared/store/snapshot.ts';
import { clusterNodes, clusterSeedNodes, uniquePrefix, waitFor } from '../support/redis.ts';
import { testConfig } from '../support/service-harness.ts';

const log = createLogger('snapshot-replica-cluster-test', 'silent');
const SHARDS = 16;

function entry(id: string, seed: number): SnapshotEntry {
  return {
    id,
    status: 'ready',
    draining: false,
    hb: 1000 + seed,
    at: 1000 + seed,
    gpu: true,
    public: true,
    types: ['asr', 'nmt', 'tts'],
    features: [],
    lang: { asr_languages: ['zh', 'en'], tts_languages: ['en'] },
    langDigest: 'd-zh-en',
    pools: [],
    max: 4,
    running: seed % 4,
    reserved: 0,
    cpu: seed % 100,
    gpuPct: null,
    mem: 30,
  };
}

const batch = (upserts: SnapshotEntry[], removals: string[]) => ({
  at: Date.now(),
  streamCap: 1000,
  loadChangeThreshold: 5,
  upserts: upserts.map((e) => upsertOf(e)),
  removals,
});

describe('SnapshotReplica (3-master Redis Cluster)', () => {
  let redis: RedisClient;
  let replicaClient: RedisClient;
  let keys: KeyBuilder;
  const readerName = `replica-${uniquePrefix()}`; // its readers are named sb:<this>:snapshot
  const replicas: SnapshotReplica[] = [];

  const publish = async (shard: number, upserts: SnapshotEntry[], removals: string[] = []) => {
    // the language blob the entries name by digest, as the gateway's scripts store it
    await redis.hset(keys.shard(shard).caps, 'd-zh-en', JSON.stringify(entry('', 0).lang));
    return (await new SnapshotStore(redis, keys).publish(shard, batch(upserts, removals))).version;
  };

  const start = async (index = new SnapshotIndex(), blockMs = 100) => {
    const replica = new SnapshotReplica(replicaClient, keys, index, { blockMs, verifyMs: 100, log });
    replicas.push(replica);
    await replica.start();
    return { replica, index };
  };

  async function expectCaughtUpAndEqual(replica: SnapshotReplica, index: SnapshotIndex) {
    const shards = Array.from({ length: SHARDS }, (_, s) => s);
    await waitFor(
      async () => {
        const versions = await Promise.all(
          shards.map(async (s) => Number((await redis.get(keys.shard(s).version)) ?? 0)),
        );
        expect(replica.status().shards.map((s) => s.version)).toEqual(versions);
      },
      { timeoutMs: 5000, intervalMs: 20 },
    );
    let total = 0;
    for (const shard of shards) {
      const checkpoint = await redis.hgetall(keys.shard(shard).checkpoint);
      const mine: Record<string, string> = {};
      for (const node of index.all())
        if (node.shard === shard) mine[node.entry.id] = encodeEntry(node.entry, 'checkpoint');
      expect(mine, `shard ${shard}`).toEqual(checkpoint);
      total += Object.keys(checkpoint).length;
    }
    expect(index.size).toBe(total);
  }

  beforeAll(async () => {
    const config = testConfig(
      uniquePrefix(),
      { clusterNodes: clusterNodes() },
      { SB_SHARDS: String(SHARDS) },
    );
    keys = new KeyBuilder(config.prefix, config.shards);
    redis = createRedisClient(config, log, { name: 'writer', mode: 'fail-fast' });
    replicaClient = createRedisClient(config, log, { name: readerName, mode: 'blocking' });
    await Promise.all([waitUntilReady(redis), waitUntilReady(replicaClient)]);
  });
  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await Promise.all([redis.quit(), replicaClient.quit()]);
  });

  it('bootstraps all 16 shards, tails every shard without CROSSSLOT, and reloads gaps', async () => {
    for (let shard = 0; shard < SHARDS; shard++) {
      await publish(shard, [entry(`c${shard}-a`, shard), entry(`c${shard}-b`, shard + 1)]);
    }
    const { replica, index } = await start();
    expect(replica.ready).toBe(true);
    await expectCaughtUpAndEqual(replica, index);
    expect(index.size).toBe(2 * SHARDS);

    // Deltas on every shard (so on every master) are applied in place.
    for (let shard = 0; shard < SHARDS; shard++) {
      await publish(shard, [entry(`c${shard}-a`, 500 + shard)], [`c${shard}-b`]);
    }
    await expectCaughtUpAndEqual(replica, index);
    expect(index.size).toBe(SHARDS);
    expect(replica.status().reloads).toBe(0);

    // A jump on one shard and hidden, trimmed versions on another: both reload that shard only.
    await redis.incr(keys.shard(3).version);
    await publish(3, [entry('c3-jump', 3)]);
    const k = keys.shard(11);
    const tx = redis.multi();
    const store = new SnapshotStore(redis, keys);
    store.queuePublish(tx, 11, batch([entry('c11-x', 1)], []));
    store.queuePublish(tx, 11, batch([], ['c11-a']));
    tx.xtrim(k.deltas, 'MAXLEN', 0);
    await tx.exec();
    await expectCaughtUpAndEqual(replica, index);
    expect(replica.status().reloads).toBe(2);
  });

  it('holds one blocking connection per shard, and closes them promptly', async () => {
    const { replica } = await start(undefined, 20_000);
    const countReaders = async () => {
      let n = 0;
      for (const seed of clusterSeedNodes()) {
        const node = new Redis(seed);
        try {
          const list = String(await node.client('LIST'));
          n += list.split('\n').filter((line) => line.includes(`name=sb:${readerName}:snapshot `)).length;
        } finally {
          node.disconnect();
        }
      }
      return n;
    };
    await waitFor(async () => expect(await countReaders()).toBe(SHARDS));
    const t0 = performance.now();
    await replica.close();
    expect(performance.now() - t0).toBeLessThan(500);
    await waitFor(async () => expect(await countReaders()).toBe(0));
  });
});
