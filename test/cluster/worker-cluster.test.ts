import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { allDeltas, checkpointEntry, TestFleet } from '../support/fleet.ts';
import {
  startTestGateway,
  startTestWorker,
  type TestGateway,
  type TestWorker,
} from '../support/service-harness.ts';
import { clusterNodes, clusterSeedNodes, uniquePrefix, waitFor } from '../support/redis.ts';

describe('worker on a 3-master Redis Cluster', () => {
  let gw: TestGateway;
  let worker: TestWorker;
  let redis: Cluster;

  beforeAll(async () => {
    const prefix = uniquePrefix();
    const env = { SB_NODE_TTL_MS: '1000', SB_REAPER_INTERVAL_MS: '300' };
    gw = await startTestGateway(prefix, { clusterNodes: clusterNodes() }, env);
    worker = await startTestWorker(prefix, { clusterNodes: clusterNodes() }, env);
    redis = new Cluster(clusterSeedNodes());
  });
  afterAll(async () => {
    await worker.close();
    await gw.close();
    await redis.quit();
  });

  it('indexes pools, publishes every shard, reaps silent nodes — no CROSSSLOT anywhere', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `cl-${i}`);
    const fleet = await TestFleet.connect(gw.ws, ids);
    ids.forEach((_, i) => fleet.heartbeat(i, 1));
    await waitFor(
      async () => {
        const entries = await Promise.all(ids.map((id) => checkpointEntry(redis, gw.keys, id)));
        return entries.every((e) => e?.status === 'ready' && e.pools.includes('zh:en'));
      },
      { timeoutMs: 15000 },
    );
    const deltas = await allDeltas(redis, gw.keys);
    expect(new Set(deltas.map((d) => d.shard)).size).toBeGreaterThan(8);

    // silent (sockets open): the reaper marks them offline, the flush publishes it
    await waitFor(
      async () => {
        const entries = await Promise.all(ids.map((id) => checkpointEntry(redis, gw.keys, id)));
        return entries.every((e) => e?.status === 'offline');
      },
      { timeoutMs: 15000 },
    );
    expect(fleet.errors()).toEqual([]);
    await fleet.close();
  });
});
