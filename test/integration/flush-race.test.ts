import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { SnapshotFlusher } from '../../services/worker/snapshot-flusher.ts';
import { createWorkerMetrics } from '../../services/worker/worker-metrics.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { DerivedWorkQueues } from '../../shared/queues.ts';
import { createRedisClient, type RedisClient } from '../../shared/redis-client.ts';
import { SnapshotStore } from '../../shared/store/snapshot.ts';
import { checkpointEntry, TestFleet } from '../support/fleet.ts';
import { frame, registerBody } from '../support/node-fixtures.ts';
import { startTestGateway, testConfig, type TestGateway } from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';

/**
 * The flush/heartbeat race (issue 13): a flush reads a re-registered node (`registering`), a
 * heartbeat lands before the flush publishes and is compared with the OLD published `ready`
 * (nothing significant: not dirty), then the flush publishes `registering`. The flush is held
 * between its read and its publish (the fault-injection hook) while the heartbeat is applied
 * through a real gateway, so the interleaving is exact, not timed.
 */
describe('snapshot flush vs a heartbeat between its read and its publish', () => {
  let gw: TestGateway;
  let redis: RedisClient;
  let queues: DerivedWorkQueues;
  let store: SnapshotStore;

  beforeAll(async () => {
    const prefix = uniquePrefix('race');
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() });
    const log = createLogger('test', 'silent');
    redis = createRedisClient(testConfig(prefix, { redisUrl: redisUrl() }), log, {
      name: 't',
      mode: 'blocking',
    });
    queues = new DerivedWorkQueues(redis, gw.keys, log);
    store = new SnapshotStore(redis, gw.keys);
  });
  afterAll(async () => {
    await queues.close();
    await redis.quit();
    await gw.close();
  });

  const flusher = (pauseAfterRead?: (shard: number) => Promise<void>) =>
    new SnapshotFlusher(store, queues, createWorkerMetrics(createMetricsRegistry('t')), {
      batchSize: 500,
      streamLength: 1000,
      loadChangeThreshold: 5,
      deltaWindowMs: 10_000,
      delayMs: 25,
      holdMs: 1_000,
      ...(pauseAfterRead ? { pauseAfterRead } : {}),
    });

  it('a heartbeat that makes a re-registered node ready during the flush is published by the next flush', async () => {
    const id = 'race-node';
    const shard = gw.keys.shardOf(id);
    const k = gw.keys.shard(shard);
    const fleet = await TestFleet.connect(gw.ws, [id]);
    const applied = (ts: number) => async () => (await redis.hget(k.node(id), 'hb_ts')) === String(ts);

    // ready and published as ready
    fleet.heartbeat(0, 1);
    await waitFor(applied(1));
    await flusher().flush(shard);
    expect((await checkpointEntry(redis as Redis, gw.keys, id))?.status).toBe('ready');

    // the node reconnects: registering, dirty
    fleet.sockets[0]!.send(frame('node_register', registerBody({ node_id: id })));
    await fleet.sockets[0]!.nextOfType('node_register_ack');
    expect(await redis.hget(k.node(id), 'status')).toBe('registering');

    // the flush reads `registering`; its first healthy heartbeat lands before the publish
    let heartbeatLanded = false;
    const racing = flusher(async () => {
      fleet.heartbeat(0, 2);
      await waitFor(applied(2));
      heartbeatLanded = true;
      expect(await redis.hget(k.node(id), 'status')).toBe('ready');
      // compared with the published `ready`: the heartbeat found nothing significant
      expect(await redis.sismember(k.dirty, id)).toBe(0);
    });
    const first = await racing.flush(shard);
    expect(heartbeatLanded).toBe(true);
    expect(first.upserts).toBe(1);
    // what the flush read is published, and the node is dirty again for the next flush
    expect((await checkpointEntry(redis as Redis, gw.keys, id))?.status).toBe('registering');
    expect(first.redirtied).toBe(1);
    expect(await redis.sismember(k.dirty, id)).toBe(1);

    // the next flush (requested by the first) publishes ready, without another heartbeat
    const second = await flusher().flush(shard);
    expect(second.redirtied).toBe(0);
    expect((await checkpointEntry(redis as Redis, gw.keys, id))?.status).toBe('ready');
    expect(await redis.hget(k.node(id), 'pub')).toMatch(/^ready\|/);
    expect(fleet.errors()).toEqual([]);
    await fleet.close();
  });

  it('a node that did not change during the flush is not dirtied again', async () => {
    const id = 'calm-node';
    const shard = gw.keys.shardOf(id);
    const fleet = await TestFleet.connect(gw.ws, [id]);
    fleet.heartbeat(0, 1);
    await waitFor(async () => (await redis.hget(gw.keys.shard(shard).node(id), 'hb_ts')) === '1');
    let paused = 0;
    const result = await flusher(() => {
      paused++;
      return Promise.resolve();
    }).flush(shard);
    expect(paused).toBe(1);
    expect(result.upserts).toBeGreaterThanOrEqual(1);
    expect(result.redirtied).toBe(0);
    expect(await redis.sismember(gw.keys.shard(shard).dirty, id)).toBe(0);
    await fleet.close();
  });
});
