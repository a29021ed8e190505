import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotFlusher, type FlushOptions } from '../../services/worker/snapshot-flusher.ts';
import { createWorkerMetrics } from '../../services/worker/worker-metrics.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { DerivedWorkQueues } from '../../shared/queues.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { SnapshotStore } from '../../shared/store/snapshot.ts';
import { testConfig } from '../support/service-harness.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

/**
 * One snapshot-flush job keeps its shard while the shard stays busy (issue 13: a BullMQ job per
 * delta was a large part of the worker's CPU per delta): after SB_FLUSH_DELAY_MS, rounds of
 * take → read → publish, SB_FLUSH_DELAY_MS apart, until a round finds nothing dirty or `holdMs` is spent; then it asks for its successor.
 * Dirty ids without a record are published as removals, so each round's work is visible in the
 * shard's delta stream.
 */
describe('snapshot flush job: rounds while the shard is busy', () => {
  let redis: RedisClient;
  let keys: KeyBuilder;
  let queues: DerivedWorkQueues;

  beforeAll(async () => {
    const config = testConfig(uniquePrefix('flushjob'), { redisUrl: redisUrl() });
    const log = createLogger('test', 'silent');
    keys = new KeyBuilder(config.prefix, config.shards);
    redis = createRedisClient(config, log, { name: 't', mode: 'blocking' });
    await waitUntilReady(redis);
    queues = new DerivedWorkQueues(redis, keys, log);
  });
  afterAll(async () => {
    await queues.close();
    await redis.quit();
  });

  const flusher = (o: Partial<FlushOptions>) =>
    new SnapshotFlusher(
      new SnapshotStore(redis, keys),
      queues,
      createWorkerMetrics(createMetricsRegistry('t')),
      {
        batchSize: 2,
        streamLength: 1000,
        loadChangeThreshold: 5,
        deltaWindowMs: 10_000,
        delayMs: 30,
        holdMs: 5_000,
        ...o,
      },
    );
  const deltas = async (shard: number) =>
    (await redis.xrange(keys.shard(shard).deltas, '-', '+')).map(([, f]) => f[f.indexOf('rm') + 1]);

  it('publishes what is dirtied while it waits, drains a backlog at once, and ends on an empty set', async () => {
    const shard = 1;
    const k = keys.shard(shard);
    await redis.sadd(k.dirty, 'gone-a');
    let reads = 0;
    const job = flusher({
      // during the first round: three more dirty nodes, more than one batch (2)
      pauseAfterRead: async () => {
        if (++reads === 1) await redis.sadd(k.dirty, 'gone-b', 'gone-c', 'gone-d');
      },
    });
    const started = performance.now();
    const r = await job.flushJob(shard);
    const elapsed = performance.now() - started;
    // a: round 1; b, c, d: two rounds of at most 2 after one delay; a 4th round finds nothing
    expect(r).toMatchObject({ rounds: 4, removals: 4, remaining: 0 });
    expect((await deltas(shard)).map((rm) => (JSON.parse(rm!) as string[]).length)).toEqual([1, 2, 1]);
    // waited the delay before round 1, after it and after round 3 (the backlog's ran at once)
    expect(elapsed).toBeGreaterThanOrEqual(3 * 30 - 5);
    expect(await queues.snapshotFlush.getJobCounts('waiting', 'delayed')).toEqual({ waiting: 0, delayed: 0 });
  });

  it('past holdMs it stops and asks for its successor: a dirty set is never left without a job', async () => {
    const shard = 2;
    const k = keys.shard(shard);
    await redis.sadd(k.dirty, 'gone-e');
    const job = flusher({
      holdMs: 10,
      pauseAfterRead: async () => {
        await redis.sadd(k.dirty, 'gone-f');
      },
    });
    const r = await job.flushJob(shard);
    expect(r).toMatchObject({ rounds: 1, removals: 1 });
    expect(await redis.sismember(k.dirty, 'gone-f')).toBe(1);
    const counts = await queues.snapshotFlush.getJobCounts('waiting', 'delayed');
    expect((counts['waiting'] ?? 0) + (counts['delayed'] ?? 0)).toBe(1);
  });
});
