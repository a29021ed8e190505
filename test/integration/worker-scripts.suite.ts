import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeyBuilder, type ShardKeys } from '../../shared/keys.ts';
import { RetentionStore, SnapshotStore } from '../../shared/store/snapshot.ts';
import { decodeEntry, encodeEntry, publishedValues } from '../../shared/snapshot-entry.ts';
import { entry } from '../support/snapshot-replica-fixtures.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { testConfig, type RedisTarget } from '../support/service-harness.ts';
import { uniquePrefix } from '../support/redis.ts';

/** Every return path of the worker's Lua scripts, against a real Redis (standalone or Cluster). */
export function describeWorkerScripts(label: string, target: () => RedisTarget): void {
  describe(`worker Lua scripts (${label})`, () => {
    let redis: RedisClient;
    let keys: KeyBuilder;
    let k: ShardKeys;
    let shard = 0;

    beforeAll(async () => {
      const config = testConfig(uniquePrefix(), target(), { SB_SHARDS: '64' });
      keys = new KeyBuilder(config.prefix, config.shards);
      redis = createRedisClient(config, createLogger('test', 'silent'), { name: 'test', mode: 'fail-fast' });
      await waitUntilReady(redis);
    });
    afterAll(async () => {
      await redis.quit();
    });
    beforeEach(() => {
      k = keys.shard(shard++); // a fresh shard per test
    });

    const take = (batch: number) => redis.takeDirty(k.dirty, k.dirtyTaken, batch);
    const publish = async (
      upserts: [string, string, string, string?][],
      removals: string[] = [],
      streamCap = 1000,
      keepFromVersion = 0,
    ) => {
      const store = new SnapshotStore(redis, keys);
      const batch = upserts.map(([id, entry, values, stamp]) => ({ id, entry, values, stamp: stamp ?? '' }));
      return store.publish(k.shard, {
        at: 12345,
        streamCap,
        loadChangeThreshold: 5,
        keepFromVersion,
        upserts: batch,
        removals,
      });
    };

    describe('takeDirty', () => {
      it('returns nothing for an empty dirty set', async () => {
        expect(await take(10)).toEqual([0, 0]);
        expect(await redis.exists(k.dirtyTaken)).toBe(0);
      });

      it('moves at most a batch from dirty to taken and reports what is left', async () => {
        await redis.sadd(k.dirty, 'a', 'b', 'c');
        const [recovered, left, ...ids] = await take(2);
        expect([recovered, left, ids.length]).toEqual([0, 1, 2]);
        expect((await redis.smembers(k.dirtyTaken)).sort()).toEqual(ids.map(String).sort());
        expect(await redis.scard(k.dirty)).toBe(1);
      });

      it("returns a crashed flush's batch again, without taking more", async () => {
        await redis.sadd(k.dirtyTaken, 'x', 'y');
        await redis.sadd(k.dirty, 'z');
        const [recovered, left, ...ids] = await take(10);
        expect([recovered, left]).toEqual([1, 1]);
        expect(ids.map(String).sort()).toEqual(['x', 'y']);
        expect(await redis.smembers(k.dirty)).toEqual(['z']);
      });
    });

    describe('readNodes', () => {
      it("gives each node's published values: its record's, else the shard's hash of the earlier layout", async () => {
        await redis.hset(k.node('new'), 'status', 'ready', 'pub', 'ready|0|1||3|1');
        await redis.hset(k.node('old'), 'status', 'ready');
        await redis.hset(k.published, 'old', 'ready|0|2||3|2', 'new', 'stale');
        await redis.hset(k.node('never'), 'status', 'registering');
        const reads = await new SnapshotStore(redis, keys).readNodes(k.shard, ['new', 'old', 'never']);
        expect(reads.map((r) => r.previous)).toEqual(['ready|0|1||3|1', 'ready|0|2||3|2', null]);
      });
    });

    describe('publishSnapshot', () => {
      it('writes entries and published values, removes, bumps the version and appends one delta <v>-0', async () => {
        await redis.hset(k.checkpoint, 'gone', '{}');
        await redis.hset(k.node('b'), 'status', 'ready');
        // the shard's hash of published values before they moved into the records: emptied
        await redis.hset(k.published, 'gone', 'x', 'b', 'y');
        await redis.sadd(k.dirtyTaken, 'a', 'b', 'gone');
        const v = await publish(
          [
            ['a', '{"id":"a"}', 'ready|0|1|2|3|12345'],
            ['b', '{"id":"b"}', 'ready|1|1||3|12345'],
          ],
          ['gone'],
        );
        expect(v).toEqual({ version: 1, redirtied: 0, dirtyWasEmpty: false });
        expect(await redis.hgetall(k.checkpoint)).toEqual({ a: '{"id":"a"}', b: '{"id":"b"}' });
        expect(await redis.hget(k.node('b'), 'pub')).toBe('ready|1|1||3|12345');
        expect(await redis.exists(k.node('a'))).toBe(0); // no record: none created for its values
        expect(await redis.exists(k.published)).toBe(0);
        expect(await redis.exists(k.dirtyTaken)).toBe(0);
        const entries = await redis.xrange(k.deltas, '-', '+');
        expect(entries).toHaveLength(1);
        const [id, fields] = entries[0]!;
        expect(id).toBe('1-0');
        const f: Record<string, string> = {};
        for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
        expect(f['v']).toBe('1');
        expect(f['at']).toBe('12345');
        expect(JSON.parse(f['up']!)).toEqual([{ id: 'a' }, { id: 'b' }]);
        expect(JSON.parse(f['rm']!)).toEqual(['gone']);
      });

      it('writes a compact entry into the checkpoint without its id (the field names it); the delta keeps it', async () => {
        const e = entry('node-x', 3);
        await redis.hset(k.caps, e.langDigest, '{}');
        await publish([['node-x', encodeEntry(e), publishedValues(e)]]);
        const stored = await redis.hget(k.checkpoint, 'node-x');
        expect(stored).toBe(encodeEntry(e, 'checkpoint'));
        expect(stored!.length).toBe(encodeEntry(e).length - '"node-x"'.length + 1);
        expect(decodeEntry(JSON.parse(stored!), 'node-x')).toEqual(decodeEntry(JSON.parse(encodeEntry(e))));
        expect(decodeEntry(JSON.parse(stored!))).toBeNull(); // read without its field: not an entry
        const [[, fields]] = (await redis.xrange(k.deltas, '-', '+')) as [[string, string[]]];
        expect(fields[fields.indexOf('up') + 1]).toBe(`[${encodeEntry(e)}]`);
      });

      it('publishes nothing (same version, no delta) for an empty batch, and releases it', async () => {
        await publish([['a', '{}', 'v']]);
        await redis.sadd(k.dirtyTaken, 'a');
        expect((await publish([])).version).toBe(1);
        expect(await redis.xlen(k.deltas)).toBe(1);
        expect(await redis.exists(k.dirtyTaken)).toBe(0);
      });

      it('puts back in the dirty set a node changed significantly since the flush read it', async () => {
        const fields = (status: string, ts: number, cpu: number) => [
          'status',
          status,
          'hb_ts',
          ts,
          'hb_at',
          ts * 10,
          'running',
          '0',
          'cpu',
          cpu,
          'gpu_pct',
          '',
          'mem',
          '3',
        ];
        await redis.hset(k.node('same'), ...fields('ready', 5, 1));
        await redis.hset(k.node('moved'), ...fields('ready', 6, 1)); // registering → ready since the read
        await redis.hset(k.node('wander'), ...fields('ready', 6, 4)); // cpu 1 → 4: within the threshold (5)
        await redis.hset(k.node('busy'), ...fields('ready', 6, 40)); // cpu 1 → 40
        await redis.sadd(k.dirtyTaken, 'same', 'moved', 'wander', 'busy');
        const result = await publish([
          ['same', '{"id":"same"}', 'ready|0|1||3|12345', 'ready|5|50'],
          ['moved', '{"id":"moved"}', 'registering|0|1||3|12345', 'registering|5|50'],
          ['wander', '{"id":"wander"}', 'ready|0|1||3|12345', 'ready|5|50'],
          ['busy', '{"id":"busy"}', 'ready|0|1||3|12345', 'ready|5|50'],
        ]);
        expect(result).toEqual({ version: 1, redirtied: 2, dirtyWasEmpty: true });
        // all are published (each read was a real state); the significantly changed are dirty again
        expect(await redis.hget(k.checkpoint, 'moved')).toBe('{"id":"moved"}');
        expect(await redis.hget(k.node('moved'), 'pub')).toBe('registering|0|1||3|12345'); // what is published
        expect((await redis.smembers(k.dirty)).sort()).toEqual(['busy', 'moved']);
        expect(await redis.exists(k.dirtyTaken)).toBe(0);
        // a record gone since the read is dirty again too (the next flush publishes its removal)
        await redis.sadd(k.dirty, 'other');
        const again = await publish([['ghost', '{"id":"ghost"}', 'ready|0|1||3|12345', 'ready|1|1']]);
        expect(again).toEqual({ version: 2, redirtied: 1, dirtyWasEmpty: false });
        expect(await redis.exists(k.node('ghost'))).toBe(0);
        expect((await redis.smembers(k.dirty)).sort()).toEqual(['busy', 'ghost', 'moved', 'other']);
      });

      it('trims the delta stream to the versions from keepFromVersion on (whole stream nodes: approximate)', async () => {
        for (let i = 0; i < 300; i++) await publish([['a', `{"i":${i}}`, 'v']]);
        expect(await redis.xlen(k.deltas)).toBe(300);
        await publish([['a', '{"i":300}', 'v']], [], 1000, 250);
        const ids = (await redis.xrange(k.deltas, '-', '+')).map(([id]) => Number(id.split('-')[0]));
        expect(ids[0]).toBeGreaterThan(1);
        expect(ids[0]).toBeLessThanOrEqual(250); // nothing from 250 on is trimmed
        expect(ids.at(-1)).toBe(301);
        ids.forEach((v, i) => expect(v).toBe(ids[0]! + i));
      });

      it('keeps versions contiguous when the stream is trimmed', async () => {
        for (let i = 0; i < 300; i++) await publish([['a', `{"i":${i}}`, 'v']], [], 100);
        const ids = (await redis.xrange(k.deltas, '-', '+')).map(([id]) => Number(id.split('-')[0]));
        expect(ids.length).toBeLessThan(300);
        expect(ids.at(-1)).toBe(300);
        ids.forEach((v, i) => expect(v).toBe(ids[0]! + i));
        expect(await redis.get(k.version)).toBe('300');
      });
    });

    describe('removeNode', () => {
      const remove = async (id: string, cutoff: number) => {
        const { removed, dirtyWasEmpty } = await new RetentionStore(redis, keys).removeNode(
          k.shard,
          id,
          cutoff,
        );
        return [removed ? 1 : 0, dirtyWasEmpty ? 1 : 0];
      };

      it('removes a node offline since before the cutoff', async () => {
        await redis.hset(k.node('n'), 'status', 'offline');
        await redis.zadd(k.offline, 100, 'n');
        expect(await remove('n', 200)).toEqual([1, 1]);
        expect(await redis.exists(k.node('n'))).toBe(0); // deleted in the same call
        expect(await redis.sismember(k.dirty, 'n')).toBe(1);
        expect(await redis.zscore(k.offline, 'n')).toBeNull();
      });

      it('leaves a node offline since after the cutoff, and forgets one that came back', async () => {
        await redis.hset(k.node('n'), 'status', 'offline');
        await redis.zadd(k.offline, 300, 'n');
        expect(await remove('n', 200)).toEqual([0, 0]);
        expect(await redis.zscore(k.offline, 'n')).toBe('300');
        await redis.hset(k.node('n'), 'status', 'ready');
        expect(await remove('n', 400)).toEqual([0, 0]);
        expect(await redis.zscore(k.offline, 'n')).toBeNull();
      });
    });

    describe('markOffline with a liveness cutoff (the reaper)', () => {
      it('leaves a node that heartbeated after the cutoff, marks one that did not', async () => {
        await redis.hset(k.node('n'), { status: 'ready', epoch: '1' });
        await redis.zadd(k.live, 500, 'n');
        const mark = (cutoff: number) =>
          redis.markOffline(k.node('n'), k.live, k.offline, k.dirty, 'n', '', 600, cutoff);
        expect(await mark(400)).toEqual([0, 0]);
        expect(await mark(500)).toEqual([1, 1]);
        expect(await redis.hget(k.node('n'), 'status')).toBe('offline');
      });
    });
  });
}
