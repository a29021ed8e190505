import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import { SnapshotReplica, type SnapshotReplicaOptions } from '../../services/selector/snapshot-replica.ts';
import { encodeEntry } from '../../shared/snapshot-entry.ts';
import { SnapshotStore, upsertOf } from '../../shared/store/snapshot.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { testConfig } from '../support/service-harness.ts';
import {
  SHARDS,
  caughtUp,
  entry,
  expectReplicaEqualsRedis,
  log,
  publish,
  storeLangBlobs,
} from '../support/snapshot-replica-fixtures.ts';

describe('SnapshotReplica (standalone Redis)', () => {
  let redis: RedisClient;
  let replicaClient: RedisClient;
  const replicas: SnapshotReplica[] = [];

  function replicaFor(
    keys: KeyBuilder,
    index = new SnapshotIndex(),
    options: Partial<SnapshotReplicaOptions> = {},
  ) {
    const replica = new SnapshotReplica(replicaClient, keys, index, { blockMs: 100, log, ...options });
    replicas.push(replica);
    return { replica, index };
  }

  beforeAll(async () => {
    const config = testConfig(uniquePrefix(), { redisUrl: redisUrl() });
    redis = createRedisClient(config, log, { name: 'writer', mode: 'fail-fast' });
    replicaClient = createRedisClient(config, log, { name: 'replica', mode: 'blocking' });
    await Promise.all([waitUntilReady(redis), waitUntilReady(replicaClient)]);
  });
  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await Promise.all([redis.quit(), replicaClient.quit()]);
  });

  it('bootstraps every shard from the existing checkpoints and is ready only after', async () => {
    const keys = new KeyBuilder(uniquePrefix('boot'), SHARDS);
    await publish(redis, keys, 0, [entry('a', 1), entry('b', 2)]);
    await publish(redis, keys, 0, [entry('c', 3)], ['a']);
    await publish(redis, keys, 2, [entry('d', 4)]);
    const { replica, index } = replicaFor(keys);
    expect(replica.ready).toBe(false);
    const started = replica.start();
    expect(replica.ready).toBe(false);
    await started;
    expect(replica.ready).toBe(true);
    await expectReplicaEqualsRedis(redis, keys, index);
    const status = replica.status();
    expect(status.reloads).toBe(0);
    expect(status.shards.map((s) => [s.version, s.nodes])).toEqual([
      [2, 2],
      [0, 0],
      [1, 1],
      [0, 0],
    ]);
    expect(status.shards.every((s) => s.age_ms !== null && s.age_ms >= 0)).toBe(true);
    expect(index.get('c')?.shard).toBe(0);
  });

  it('applies a delta in place, reports it, and skips nothing', async () => {
    const keys = new KeyBuilder(uniquePrefix('delta'), SHARDS);
    await publish(redis, keys, 1, [entry('x', 1), entry('y', 2)]);
    const applied: [number, number, string[], number][] = [];
    const { replica, index } = replicaFor(keys, undefined, {
      onApplied: (shard, version, entries, at) =>
        applied.push([shard, version, entries.map((e) => e.id), at]),
    });
    await replica.start();
    const before = index.get('x');

    const at = Date.now() - 250;
    await publish(redis, keys, 1, [entry('x', 42, at)], ['y'], at);
    await waitFor(() => index.get('x')?.entry.cpu === 42);
    expect(index.get('y')).toBeUndefined();
    expect(index.get('x')).not.toBe(before);
    expect(applied).toEqual([[1, 2, ['x'], at]]);
    const shard1 = replica.status().shards[1]!;
    expect(shard1).toMatchObject({ version: 2, nodes: 1 });
    expect(shard1.age_ms).toBeGreaterThanOrEqual(250);
    expect(replica.status().reloads).toBe(0);
    await expectReplicaEqualsRedis(redis, keys, index);
  });

  it('reloads the shard alone on a version jump', async () => {
    const keys = new KeyBuilder(uniquePrefix('jump'), SHARDS);
    await publish(redis, keys, 3, [entry('j1', 1)]);
    await publish(redis, keys, 0, [entry('other', 9)]);
    const { replica, index } = replicaFor(keys, undefined, { verifyMs: 60_000 });
    await replica.start();
    const other = index.get('other');

    await redis.incr(keys.shard(3).version); // version 2 has no delta
    await publish(redis, keys, 3, [entry('j2', 2)]); // delta 3-0
    await caughtUp(redis, keys, replica);
    expect(replica.status().reloads).toBe(1);
    expect(index.get('other')).toBe(other); // shard 0 untouched
    await expectReplicaEqualsRedis(redis, keys, index);
  });

  it('reloads when the deltas it needs were trimmed while nothing newer arrived', async () => {
    const keys = new KeyBuilder(uniquePrefix('trim'), SHARDS);
    const { replica, index } = replicaFor(keys, undefined, { verifyMs: 50 });
    await replica.start();
    // Atomically: two versions the replica never sees, then the stream is emptied.
    const k = keys.shard(2);
    const store = new SnapshotStore(redis, keys);
    await storeLangBlobs(redis, keys);
    const tx = redis.multi();
    store.queuePublish(tx, 2, {
      at: 1,
      streamCap: 1000,
      loadChangeThreshold: 5,
      upserts: [upsertOf(entry('t1', 1))],
      removals: [],
    });
    store.queuePublish(tx, 2, {
      at: 2,
      streamCap: 1000,
      loadChangeThreshold: 5,
      upserts: [upsertOf(entry('t2', 2))],
      removals: [],
    });
    tx.xtrim(k.deltas, 'MAXLEN', 0);
    await tx.exec();
    await caughtUp(redis, keys, replica);
    expect(replica.status().reloads).toBe(1);
    await expectReplicaEqualsRedis(redis, keys, index);

    // ... and tails again from the reloaded version.
    await publish(redis, keys, 2, [entry('t3', 3)]);
    await caughtUp(redis, keys, replica);
    expect(index.get('t3')).toBeDefined();
    expect(replica.status().reloads).toBe(1);
  });

  it('reloads instead of applying a malformed delta', async () => {
    const keys = new KeyBuilder(uniquePrefix('bad'), SHARDS);
    await publish(redis, keys, 1, [entry('m1', 1)]);
    const { replica, index } = replicaFor(keys, undefined, { verifyMs: 60_000 });
    await replica.start();
    const k = keys.shard(1);
    await redis.hset(k.checkpoint, 'm2', encodeEntry(entry('m2', 2))); // the form with its id, as before issue 13's fifth step
    await redis.incr(k.version);
    await redis.xadd(k.deltas, '2-0', 'v', '2', 'at', '1', 'up', '[{"id":', 'rm', '[]');
    await waitFor(() => replica.status().reloads === 1);
    await caughtUp(redis, keys, replica);
    await expectReplicaEqualsRedis(redis, keys, index);
  });

  it('close is prompt even while a long XREAD BLOCK is pending', async () => {
    const keys = new KeyBuilder(uniquePrefix('close'), SHARDS);
    const { replica } = replicaFor(keys, undefined, { blockMs: 20_000, verifyMs: 60_000 });
    await replica.start();
    await new Promise((r) => setTimeout(r, 50)); // let it block
    const t0 = performance.now();
    await replica.close();
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('matches the checkpoints after any sequence of publishes, trims, jumps and restarts', async () => {
    type Op =
      | { kind: 'publish' | 'jump'; shard: number; ups: number[]; rms: number[]; seed: number }
      | { kind: 'trim'; shard: number; maxLen: number }
      | { kind: 'hidden'; shard: number; seed: number }
      | { kind: 'restart' | 'settle' };
    const shard = fc.integer({ min: 0, max: SHARDS - 1 });
    const ids = (max: number) => fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: max });
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constantFrom('publish' as const, 'jump' as const),
          shard,
          ups: ids(4),
          rms: ids(2),
          seed: fc.nat(999),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('trim' as const), shard, maxLen: fc.nat(2) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('hidden' as const), shard, seed: fc.nat(999) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) },
    );
    const nodeId = (s: number, i: number) => `n${s}-${i}`;
    const started = performance.now();
    let reloads = 0;

    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const keys = new KeyBuilder(uniquePrefix('prop'), SHARDS);
        let { replica, index } = replicaFor(keys, undefined, { blockMs: 50, verifyMs: 50 });
        await replica.start();
        for (const o of ops) {
          switch (o.kind) {
            case 'jump':
            case 'publish': {
              // a jump: a version without a delta, then a normal publish
              if (o.kind === 'jump') await redis.incr(keys.shard(o.shard).version);
              const ups = o.ups.map((i) => entry(nodeId(o.shard, i), o.seed + i));
              const rms = o.rms.filter((i) => !o.ups.includes(i)).map((i) => nodeId(o.shard, i));
              await publish(redis, keys, o.shard, ups, rms);
              break;
            }
            case 'trim':
              await redis.xtrim(keys.shard(o.shard).deltas, 'MAXLEN', o.maxLen);
              break;
            case 'hidden': {
              const k = keys.shard(o.shard);
              const e = entry(nodeId(o.shard, o.seed % 6), o.seed);
              await storeLangBlobs(redis, keys);
              const tx = redis.multi();
              new SnapshotStore(redis, keys).queuePublish(tx, o.shard, {
                at: 1,
                streamCap: 1000,
                loadChangeThreshold: 5,
                upserts: [upsertOf(e)],
                removals: [],
              });
              tx.xtrim(k.deltas, 'MAXLEN', 0);
              await tx.exec();
              break;
            }
            case 'restart':
              reloads += replica.status().reloads;
              await replica.close();
              ({ replica, index } = replicaFor(keys, undefined, { blockMs: 50, verifyMs: 50 }));
              await replica.start();
              break;
            case 'settle':
              await caughtUp(redis, keys, replica);
              break;
          }
        }
        await caughtUp(redis, keys, replica);
        await expectReplicaEqualsRedis(redis, keys, index);
        reloads += replica.status().reloads;
        await replica.close();
      }),
      { numRuns: 30 },
    );
    expect(reloads).toBeGreaterThan(0); // the gap paths were exercised
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});
