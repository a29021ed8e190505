import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import { SnapshotReplica } from '../../services/selector/snapshot-replica.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import { testConfig } from '../support/service-harness.ts';
import {
  SHARDS,
  caughtUp,
  entry,
  expectReplicaEqualsRedis,
  log,
  publish,
} from '../support/snapshot-replica-fixtures.ts';

describe('SnapshotReplica across a Redis outage', () => {
  let server: RedisServerHandle;
  let writer: RedisClient;
  let client: RedisClient;

  beforeAll(async () => {
    server = await startRedisServer(); // no persistence: a restart loses everything
    const config = testConfig(uniquePrefix(), { redisUrl: server.url });
    writer = createRedisClient(config, log, { name: 'writer', mode: 'blocking' });
    client = createRedisClient(config, log, { name: 'replica', mode: 'blocking' });
    await Promise.all([waitUntilReady(writer), waitUntilReady(client)]);
  });
  afterAll(async () => {
    writer.disconnect();
    client.disconnect();
    await server.destroy();
  });

  it('waits for Redis to bootstrap, then reloads after Redis came back empty', async () => {
    const keys = new KeyBuilder(uniquePrefix('outage'), SHARDS);
    await server.stop();
    const index = new SnapshotIndex();
    const replica = new SnapshotReplica(client, keys, index, { blockMs: 100, log });
    const started = replica.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(replica.ready).toBe(false);
    await server.restart();
    await publish(writer, keys, 0, [entry('o1', 1)]);
    await publish(writer, keys, 0, [entry('o2', 2)]);
    await started;
    expect(replica.ready).toBe(true);
    await caughtUp(writer, keys, replica);
    await expectReplicaEqualsRedis(writer, keys, index);

    await server.stop(); // loses versions 1..2
    await new Promise((r) => setTimeout(r, 200));
    await server.restart();
    await publish(writer, keys, 1, [entry('o3', 3)]);
    await waitFor(() => replica.status().reloads >= 1, { timeoutMs: 10_000 });
    await caughtUp(writer, keys, replica);
    await expectReplicaEqualsRedis(writer, keys, index);
    expect(index.get('o1')).toBeUndefined();
    expect(replica.ready).toBe(true);

    await server.stop();
    const t0 = performance.now();
    await replica.close(); // prompt even while Redis is down
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('start rejects when closed before the bootstrap could complete', async () => {
    await server.stop();
    const replica = new SnapshotReplica(client, new KeyBuilder(uniquePrefix(), SHARDS), new SnapshotIndex(), {
      log,
    });
    const started = replica.start();
    await new Promise((r) => setTimeout(r, 100));
    await replica.close();
    await expect(started).rejects.toThrow(/closed before bootstrap/);
    expect(replica.ready).toBe(false);
    await server.restart();
  });
});
