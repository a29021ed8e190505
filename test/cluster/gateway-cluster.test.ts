import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { QUEUE_SNAPSHOT_FLUSH } from '../../shared/queues.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { JOIN_TOKEN, startTestGateway, type TestGateway } from '../support/service-harness.ts';
import { clusterNodes, clusterSeedNodes, uniquePrefix, waitFor } from '../support/redis.ts';
import { TestSocket } from '../support/ws-client.ts';
import { slotOf } from '../../shared/store/node-shard.ts';

describe('gateway on a 3-master Redis Cluster', () => {
  let gw: TestGateway;
  let redis: Cluster;

  beforeAll(async () => {
    gw = await startTestGateway(uniquePrefix(), { clusterNodes: clusterNodes() });
    redis = new Cluster(clusterSeedNodes());
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  it('registers and heartbeats nodes on every shard and enqueues hash-tagged BullMQ jobs without CROSSSLOT', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `cluster-node-${i}`);
    const shards = new Set(ids.map((id) => gw.keys.shardOf(id)));
    expect(shards.size).toBeGreaterThan(8); // spread over the masters

    const sockets = await Promise.all(ids.map(() => TestSocket.open(gw.ws, JOIN_TOKEN)));
    await Promise.all(
      sockets.map(async (socket, i) => {
        socket.send(frame('node_register', registerBody({ node_id: ids[i] })));
        await socket.nextOfType('node_register_ack');
        socket.send(frame('node_heartbeat', heartbeatBody(ids[i]!)));
      }),
    );
    await waitFor(async () => {
      const statuses = await Promise.all(ids.map((id) => redis.hget(gw.keys.forNode(id).node(id), 'status')));
      return statuses.every((s) => s === 'ready');
    });
    for (const socket of sockets) expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);

    const flush = new Queue(QUEUE_SNAPSHOT_FLUSH, { connection: redis, prefix: gw.keys.queuePrefix });
    try {
      const flushes = await flush.getJobCounts('delayed', 'waiting');
      expect((flushes['delayed'] ?? 0) + (flushes['waiting'] ?? 0)).toBe(shards.size);
    } finally {
      await flush.close();
    }

    await Promise.all(sockets.map((s) => s.close()));
    await waitFor(async () => {
      const statuses = await Promise.all(ids.map((id) => redis.hget(gw.keys.forNode(id).node(id), 'status')));
      return statuses.every((s) => s === 'offline');
    });
  });

  it("the node shard store routes its prebuilt heartbeats to the slot Redis computes for each shard's tag", async () => {
    for (let shard = 0; shard < gw.keys.shards; shard++) {
      const k = gw.keys.shard(shard);
      expect(slotOf(k.tag)).toBe(await redis.cluster('KEYSLOT', k.node('any-node')));
    }
    expect(slotOf('foo')).toBe(await redis.cluster('KEYSLOT', 'foo'));
  });
});
