import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import {
  DerivedWorkQueues,
  QUEUE_LIVENESS,
  QUEUE_SNAPSHOT_FLUSH,
  type SnapshotFlushJob,
} from '../../shared/queues.ts';
import { createRedisClient } from '../../shared/redis-client.ts';
import { SnapshotFlusher } from '../../services/worker/snapshot-flusher.ts';
import { SnapshotStore } from '../../shared/store/snapshot.ts';
import { createWorkerMetrics } from '../../services/worker/worker-metrics.ts';
import { allDeltas, checkpointEntry, TestFleet } from '../support/fleet.ts';
import {
  startTestGateway,
  startTestWorker,
  testConfig,
  type TestGateway,
  type TestWorker,
} from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';

async function addedEvents(redis: Redis, prefix: string, queue: string): Promise<number> {
  const entries = await redis.xrange(`${prefix}:${queue}:events`, '-', '+');
  return entries.filter(([, f]) => f[1] === 'added').length;
}

describe('worker: pools derived by the flush, coalesced snapshot', () => {
  let gw: TestGateway;
  let worker: TestWorker;
  let redis: Redis;

  beforeAll(async () => {
    const prefix = uniquePrefix();
    const env = { SB_WS_RATE_LIMIT: '100000', SB_WS_MAX_QUEUED: '10000', SB_REAPER_INTERVAL_MS: '60000' };
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() }, env);
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() }, env);
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    await worker.close();
    await gw.close();
    await redis.quit();
  });

  it('10,000 heartbeats from 100 nodes with unchanged capabilities: only flush jobs, a node at most once per delta', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `steady-${i}`);
    const fleet = await TestFleet.connect(gw.ws, ids);

    for (let round = 1; round <= 100; round++) {
      // steady load: figures wander within the significance threshold
      for (let i = 0; i < ids.length; i++)
        fleet.heartbeat(i, round, { cpu_percent: 20 + (round % 3), mem_percent: 50 });
    }
    await waitFor(
      async () => {
        const ts = await Promise.all(ids.map((id) => redis.hget(gw.keys.forNode(id).node(id), 'hb_ts')));
        return ts.every((t) => t === '100');
      },
      { timeoutMs: 20000 },
    );
    await waitFor(async () => (await checkpointEntry(redis, gw.keys, ids[99]!))?.status === 'ready', {
      timeoutMs: 5000,
    });
    // pools are derived by the flush: no per-node job (issue 13), only flushes and the tick
    const withJobs = (await redis.keys(`${gw.keys.queuePrefix}:*:id`)).map((key) =>
      key.slice(gw.keys.queuePrefix.length + 1, -':id'.length),
    );
    expect(withJobs.sort()).toEqual([QUEUE_LIVENESS, QUEUE_SNAPSHOT_FLUSH].sort());
    expect(await addedEvents(redis, gw.keys.queuePrefix, QUEUE_SNAPSHOT_FLUSH)).toBeGreaterThan(0);
    expect(fleet.errors()).toEqual([]);

    const deltas = await allDeltas(redis, gw.keys);
    for (const d of deltas) expect(new Set(d.up).size, `shard ${d.shard} v${d.version}`).toBe(d.up.length);
    const published = deltas.reduce((n, d) => n + d.up.length, 0);
    // each node: registration, pools and the first healthy heartbeat, coalesced into a few entries; not 100
    expect(published).toBeLessThan(ids.length * 5);
    for (const id of ids) {
      const entry = await checkpointEntry(redis, gw.keys, id);
      expect(entry).toMatchObject({ status: 'ready', mem: 50, gpu: true, public: true, max: 3 });
      expect(entry!.pools).toContain('zh:en');
    }
    await fleet.close();
  });

  it('derives pools on a real capability change: directed pairs, published with the entry', async () => {
    const id = 'pools-1';
    const k = gw.keys.forNode(id);
    const lang = {
      asr_languages: ['en', 'ja', 'zh'],
      tts_languages: ['en', 'zh'],
      nmt_capabilities: [{ model_id: 'm', languages: ['en', 'ja', 'zh'], rule: 'any_to_any' }],
    };
    const fleet = await TestFleet.connect(gw.ws, [id], { language_capabilities: lang });
    fleet.heartbeat(0, 1, {}, { language_capabilities: lang });
    // the flush derives the pools when it publishes the entry
    await waitFor(async () => {
      const entry = await checkpointEntry(redis, gw.keys, id);
      return entry?.status === 'ready' && entry.pools.length > 0;
    });
    const before = await checkpointEntry(redis, gw.keys, id);
    // the old defect: {en, ja, zh} must serve en→zh
    expect(before!.pools).toEqual(['auto:en', 'auto:zh', 'en:zh', 'ja:en', 'ja:zh', 'zh:en']);

    fleet.heartbeat(0, 2, {}, { language_capabilities: { ...lang, tts_languages: ['ja'] } });
    await waitFor(
      async () => (await checkpointEntry(redis, gw.keys, id))?.pools.join() === 'auto:ja,en:ja,zh:ja',
    );
    // derived by the flush: no pool sets, no stored pools (issue 13)
    expect(await redis.exists(k.pool('zh:ja'), k.pools)).toBe(0);
    expect(await redis.hexists(k.node(id), 'pools')).toBe(0);
    await fleet.close();
  });

  it('publishes contiguous versions with stream IDs <version>-0, each version with its delta', async () => {
    const published = await Promise.all(
      Array.from({ length: gw.keys.shards }, (_, shard) => redis.get(gw.keys.shard(shard).version)),
    );
    const deltas = await allDeltas(redis, gw.keys); // read after: may hold newer versions
    for (let shard = 0; shard < gw.keys.shards; shard++) {
      const versions = deltas.filter((d) => d.shard === shard).map((d) => d.version);
      versions.forEach((v, i) => expect(v).toBe(versions[0]! + i));
      if (published[shard] !== null) expect(versions).toContain(Number(published[shard]));
    }
  });
});

describe('worker: a node dirtied while a flush is active is never stranded', () => {
  it('keeps one flush waiting behind the active one (keepLastIfActive)', async () => {
    const prefix = uniquePrefix();
    const gw = await startTestGateway(prefix, { redisUrl: redisUrl() });
    const config = testConfig(prefix, { redisUrl: redisUrl() });
    const log = createLogger('test', 'silent');
    const redis = createRedisClient(config, log, { name: 'test', mode: 'blocking' });
    const queues = new DerivedWorkQueues(redis, gw.keys, log);
    const flusher = new SnapshotFlusher(
      new SnapshotStore(redis, gw.keys),
      queues,
      createWorkerMetrics(createMetricsRegistry('t')),
      {
        batchSize: 500,
        streamLength: 1000,
        loadChangeThreshold: 5,
        deltaWindowMs: 10_000,
        delayMs: 25,
        holdMs: 1_000,
      },
    );
    // Both nodes on one shard, so they share the flush job's deduplication id.
    const shard = gw.keys.shardOf('held-0');
    const other = Array.from({ length: 1000 }, (_, i) => `held-${i + 1}`).find(
      (id) => gw.keys.shardOf(id) === shard,
    )!;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let runs = 0;
    const worker = new Worker<SnapshotFlushJob>(
      QUEUE_SNAPSHOT_FLUSH,
      async (job) => {
        runs++;
        await flusher.flush(job.data.shard);
        if (runs === 1) await gate; // the first flush stays active after publishing
      },
      {
        connection: createRedisClient(config, log, { name: 'test-bull', mode: 'blocking' }),
        prefix: gw.keys.queuePrefix,
      },
    );
    try {
      const a = await TestFleet.connect(gw.ws, ['held-0']);
      await waitFor(async () => (await checkpointEntry(redis as Redis, gw.keys, 'held-0')) !== null);
      expect(runs).toBe(1);
      const b = await TestFleet.connect(gw.ws, [other]); // dirties the (now empty) set while the flush is active
      await waitFor(async () => (await redis.sismember(gw.keys.shard(shard).dirty, other)) === 1);
      expect(await checkpointEntry(redis as Redis, gw.keys, other)).toBeNull();
      release();
      await waitFor(async () => (await checkpointEntry(redis as Redis, gw.keys, other)) !== null);
      expect(runs).toBe(2);
      await a.close();
      await b.close();
    } finally {
      release();
      await worker.close();
      await queues.close();
      await redis.quit();
      await gw.close();
    }
  });
});
