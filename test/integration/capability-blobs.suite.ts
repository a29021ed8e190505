import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { capabilityPart, type CapabilityPart } from '../../shared/capability-digest.ts';
import { KeyBuilder, type ShardKeys } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import {
  NodeShardStore,
  type HeartbeatWrite,
  type RegistrationWrite,
} from '../../shared/store/node-shard.ts';
import {
  buildSnapshotEntry,
  encodeEntry,
  publishedValues,
  type SnapshotEntry,
} from '../../shared/snapshot-entry.ts';
import { RetentionStore, SnapshotStore } from '../../shared/store/snapshot.ts';
import { uniquePrefix } from '../support/redis.ts';
import { testConfig, type RedisTarget } from '../support/service-harness.ts';
import { TEST_NODE_POLICY } from '../support/node-fixtures.ts';

const PARTS = ['static', 'svc', 'lang'] as const;
const svcOf = (types: string[]) =>
  capabilityPart({ capability_by_type: types.map((type) => ({ type, ready: true })) });
const langOf = (codes: string[]) =>
  capabilityPart({
    asr_languages: codes,
    tts_languages: codes,
    nmt_capabilities: [{ model_id: 'm', languages: codes, rule: 'any_to_any' }],
  });

/**
 * Capability blobs stored once per digest per shard (issue 13): references counted by the
 * scripts that change a node's parts, so no node ever names a digest whose blob is gone —
 * through re-registration, capability changes, removal and the old layout's migration.
 */
export function describeCapabilityBlobs(label: string, target: () => RedisTarget): void {
  describe(`capability blobs by digest (${label})`, () => {
    let redis: RedisClient;
    let keys: KeyBuilder;
    let store: NodeShardStore;
    let k: ShardKeys;
    let run = 0;
    /** Fresh ids of one shard per test. */
    let ids: string[];
    const log = createLogger('test', 'silent');
    const policy = TEST_NODE_POLICY;

    beforeAll(async () => {
      const config = testConfig(uniquePrefix('caps'), target());
      keys = new KeyBuilder(config.prefix, config.shards);
      redis = createRedisClient(config, log, { name: 'test', mode: 'fail-fast' });
      await waitUntilReady(redis);
      const work = { requestFlush: () => Promise.resolve() };
      store = new NodeShardStore(redis, keys, work, policy, log);
    });
    afterAll(async () => {
      store.close();
      await redis.quit();
    });
    beforeEach(async () => {
      run++;
      // a shard of its own per test: the caps hash is the test's alone
      k = keys.shard(run % keys.shards);
      await redis.del(k.caps, k.capRefs);
      ids = [];
      for (let i = 0; ids.length < 3; i++)
        if (keys.shardOf(`c${run}-${i}`) === k.shard) ids.push(`c${run}-${i}`);
    });

    const staticOf = capabilityPart({ hardware: 'x', accept_public_jobs: true, features_supported: {} });
    const registration = (nodeId: string, lang: CapabilityPart, svc = svcOf(['asr'])): RegistrationWrite => ({
      nodeId,
      hasGpu: true,
      maxJobs: 2,
      parts: { static: staticOf, svc, lang },
    });
    const register = (nodeId: string, lang: CapabilityPart, svc?: CapabilityPart) =>
      store.register(registration(nodeId, lang, svc), false, { by: 'node', conn: 'ws' });
    const heartbeat = (nodeId: string, h: Partial<HeartbeatWrite>) =>
      store.heartbeat({
        nodeId, timestamp: Date.now(), cpu: 1, gpu: null, gpuMem: null, mem: 1, running: 0, anyReady: true,
        svc: svcOf(['asr']), lang: null, models: null, cached: false, ...h,
      }); // prettier-ignore

    /** Every digest a node of the shard names has its blob, and the references count exactly them. */
    async function expectConsistent(nodes: string[]) {
      const counted = new Map<string, number>();
      for (const id of nodes) {
        const digests = await redis.hmget(k.node(id), ...PARTS.map((p) => `dg_${p}`));
        for (const d of digests) if (d) counted.set(d, (counted.get(d) ?? 0) + 1);
        expect(await redis.hexists(k.node(id), 'cap_lang')).toBe(0);
        expect(await redis.hexists(k.node(id), 'dg_models')).toBe(0);
      }
      const refs = await redis.hgetall(k.capRefs);
      expect(Object.fromEntries(Object.entries(refs).map(([d, n]) => [d, Number(n)]))).toEqual(
        Object.fromEntries(counted),
      );
      expect((await redis.hkeys(k.caps)).sort()).toEqual([...counted.keys()].sort());
    }

    it('stores one blob per digest for nodes of the same capabilities; the node hash stays a listpack', async () => {
      const en = langOf(['en', 'zh', 'ja']);
      for (const id of ids) expect((await register(id, en)).kind).toBe('registered');
      expect(await redis.hget(k.caps, en.digest)).toBe(en.blob);
      expect(await redis.hget(k.capRefs, en.digest)).toBe('3');
      expect(await redis.call('OBJECT', 'ENCODING', k.node(ids[0]!))).toBe('listpack');
      await register(ids[0]!, en); // re-registration, nothing changed: same references
      await expectConsistent(ids);
    });

    it('moves the references on a change; the last one gone deletes the blob', async () => {
      const [a, b] = ids as [string, string];
      const en = langOf(['en']);
      const fr = langOf(['fr']);
      await register(a, en);
      await register(b, en);
      expect((await heartbeat(a, { lang: fr })).kind).toBe('applied');
      expect(await redis.hget(k.capRefs, en.digest)).toBe('1');
      await register(b, fr, svcOf(['tts'])); // re-registration with other parts
      expect(await redis.hexists(k.caps, en.digest)).toBe(0);
      await heartbeat(b, { svc: svcOf(['asr']) });
      await expectConsistent([a, b]);
    });

    it('needs no blob for a digest the shard holds; answers send-blobs, writing nothing, for one it lacks', async () => {
      const [a, b] = ids as [string, string];
      const en = langOf(['en']);
      const de = langOf(['de']);
      await register(a, en);
      await register(b, de);
      // a gateway that never saw `de` for a: digests only, and the shard has the blob from b
      const reply = await store.recordHeartbeat(k, { nodeId: a, timestamp: Date.now(), cpu: 1, gpu: null, gpuMem: null,
        mem: 1, running: 0, anyReady: true, svc: svcOf(['asr']), lang: de, models: null, cached: true }, false); // prettier-ignore
      expect(reply[0]).toBe(1);
      const it = langOf(['it']);
      const before = await redis.hgetall(k.node(a));
      const refused = await store.recordHeartbeat(k, { nodeId: a, timestamp: Date.now(), cpu: 2, gpu: null, gpuMem: null,
        mem: 1, running: 0, anyReady: true, svc: svcOf(['asr']), lang: it, models: null, cached: true }, false); // prettier-ignore
      expect(refused[0]).toBe(2);
      expect(await redis.hgetall(k.node(a))).toEqual(before);
      await expectConsistent([a, b]);
    });

    it('removal deletes the record in the same call, releasing its references (none for the old layout)', async () => {
      const [a, b, c] = ids as [string, string, string];
      const en = langOf(['en']);
      const ja = langOf(['ja']);
      await register(a, en);
      await register(b, ja);
      await register(c, ja);
      // c as the old layout: its blobs inside, no references held
      const digests = await redis.hmget(k.node(c), ...PARTS.map((p) => `dg_${p}`));
      const blobs = await redis.hmget(k.caps, ...digests.map((d) => d!));
      for (const d of digests) await redis.hincrby(k.capRefs, d!, -1);
      await redis.hset(k.node(c), ...PARTS.flatMap((p, i) => [`cap_${p}`, blobs[i]!]), 'pools', '["ja:ja"]');
      await redis.del(k.dirty);
      const retention = new RetentionStore(redis, keys);
      for (const id of [a, c]) {
        await redis.hset(k.node(id), 'status', 'offline');
        await redis.zadd(k.offline, 1, id);
        expect(await retention.removeNode(k.shard, id, 2)).toEqual({
          removed: true,
          dirtyWasEmpty: id === a,
        });
        expect(await redis.exists(k.node(id))).toBe(0);
        expect(await redis.zscore(k.offline, id)).toBeNull();
      }
      expect((await redis.smembers(k.dirty)).sort()).toEqual([a, c].sort()); // the flush publishes the removals
      expect(await redis.hexists(k.caps, en.digest)).toBe(0);
      expect(await redis.hget(k.capRefs, ja.digest)).toBe('1'); // b's alone: c held none
      await expectConsistent([b]);
    });

    /** The fields a record of the layout between issue 13's two steps had beside this one's. */
    const models = capabilityPart([{ model_id: 'whisper', kind: 'asr' }]);
    const EARLIER = {
      id: '', registered_at: '1700000000000', first_registered_at: '1690000000000',
      agent_version: '2.3.1', platform: 'linux', accept_public: '1', conn: 'ws', draining: '0',
      unhealthy: '0', reserved: '0', gpu_mem: '', offline_at: '1700000000001', dg_models: models.digest,
    }; // prettier-ignore
    const DEAD = Object.keys(EARLIER).filter((f) => f !== 'id');

    it('migrates a record of the layout with blobs inside (before issue 13) on its next heartbeat or registration', async () => {
      const [a, b, c] = ids as [string, string, string];
      const en = langOf(['en', 'zh']);
      await register(a, en); // this layout, holds a reference to en
      for (const id of [b, c]) {
        await register(id, en);
        // rewrite as the old layout: blobs in the hash, no references held, stored pools
        const digests = await redis.hmget(k.node(id), ...PARTS.map((p) => `dg_${p}`));
        const blobs = await redis.hmget(k.caps, ...digests.map((d) => d!));
        for (const d of digests) await redis.hincrby(k.capRefs, d!, -1);
        await redis.hset(
          k.node(id),
          ...PARTS.flatMap((p, i) => [`cap_${p}`, blobs[i]!]),
          'cap_models',
          models.blob,
          'pools',
          '["auto:en","auto:zh","en:zh","zh:en"]'.repeat(2),
          ...Object.entries({ ...EARLIER, id }).flat(),
        );
      }
      // the flush reads both layouts alike
      const [read] = await new SnapshotStore(redis, keys).readNodes(k.shard, [b]);
      expect(read!.values).toContain(en.blob);
      expect((await heartbeat(b, {})).kind).toBe('applied');
      expect((await register(c, langOf(['fr']))).kind).toBe('registered');
      for (const id of [b, c]) {
        expect(await redis.hexists(k.node(id), 'pools')).toBe(0);
        expect(await redis.hmget(k.node(id), ...DEAD, 'id', 'cap_models')).toEqual(DEAD.map(() => null).concat([null, null]));
        expect(await redis.call('OBJECT', 'ENCODING', k.node(id))).toBe('listpack');
      } // prettier-ignore
      expect(await redis.hget(k.capRefs, en.digest)).toBe('2');
      await expectConsistent([a, b, c]);
      const [again] = await new SnapshotStore(redis, keys).readNodes(k.shard, [b]);
      expect(again!.values.filter((v) => v?.startsWith('{'))).toEqual(
        read!.values.filter((v) => v?.startsWith('{')),
      );
    });

    it('migrates a record of the layout with a models digest on its next heartbeat or registration', async () => {
      const [a, b, c] = ids as [string, string, string];
      const en = langOf(['en']);
      for (const id of [a, b, c]) {
        await register(id, en);
        await heartbeat(id, {});
        // as the earlier scripts wrote it: every field, and a reference to the models blob
        await redis.hset(k.node(id), { ...EARLIER, id });
        await redis.hincrby(k.capRefs, models.digest, 1);
        await redis.hset(k.caps, models.digest, models.blob);
      }
      const snapshots = new SnapshotStore(redis, keys);
      const before = await snapshots.readNodes(k.shard, [a]);
      const entry = buildSnapshotEntry(a, before[0]!.values, 1)!;
      expect(entry.public).toBe(true); // from the static blob, whatever the record holds
      expect((await heartbeat(a, {})).kind).toBe('applied');
      expect((await register(b, en)).kind).toBe('registered');
      for (const id of [a, b]) {
        const record = await redis.hgetall(k.node(id));
        for (const f of [...DEAD, 'id']) expect(record, f).not.toHaveProperty(f);
        expect(record['status']).toBeTruthy();
        expect(record['dg_lang']).toBe(en.digest);
      }
      expect(await redis.hget(k.capRefs, models.digest)).toBe('1'); // c's, until it heartbeats
      // or is removed unmigrated: its models reference goes with the others
      await redis.hset(k.node(c), 'status', 'offline');
      await redis.zadd(k.offline, 1, c);
      expect((await new RetentionStore(redis, keys).removeNode(k.shard, c, 2)).removed).toBe(true);
      expect(await redis.hexists(k.caps, models.digest)).toBe(0);
      expect(await redis.hexists(k.capRefs, models.digest)).toBe(0);
      await expectConsistent([a, b]);
      const [after] = await snapshots.readNodes(k.shard, [a]);
      const same = ({ public: p, features, types, langDigest, gpu, max }: SnapshotEntry) =>
        ({ p, features, types, langDigest, gpu, max }); // prettier-ignore
      expect(same(buildSnapshotEntry(a, after!.values, 1)!)).toEqual(same(entry));
    });

    /** What a flush does: read the nodes, build their entries, publish them (the real script). */
    async function flush(nodes: string[], removals: string[] = []) {
      const snapshots = new SnapshotStore(redis, keys);
      const reads = await snapshots.readNodes(k.shard, nodes);
      const entries = reads.map((r) => buildSnapshotEntry(r.id, r.values, Date.now())!);
      return snapshots.publish(k.shard, {
        at: Date.now(), streamCap: 100, loadChangeThreshold: 5, removals,
        upserts: entries.map((e, i) => ({ id: e.id, entry: encodeEntry(e), values: publishedValues(e), stamp: reads[i]!.stamp })),
      }); // prettier-ignore
    }

    it('the checkpoint holds a reference to the language blob its entries name', async () => {
      const [a] = ids as [string];
      const en = langOf(['en']);
      const fr = langOf(['fr']);
      await register(a, en);
      await flush([a]);
      expect(await redis.hget(k.capRefs, en.digest)).toBe('2'); // the node hash and the checkpoint
      await heartbeat(a, { lang: fr });
      expect(await redis.hget(k.caps, en.digest)).toBe(en.blob); // still published: still there
      await flush([a]);
      expect(await redis.hexists(k.caps, en.digest)).toBe(0);
      expect(await redis.hget(k.capRefs, fr.digest)).toBe('2');
      await redis.hset(k.node(a), 'status', 'removed');
      await flush([], [a]);
      expect(await redis.hget(k.capRefs, fr.digest)).toBe('1'); // the record's, until it is deleted
    });

    it('does not publish an entry whose language blob is gone since the read: the node is dirty again', async () => {
      const [a] = ids as [string];
      const en = langOf(['en']);
      await register(a, en);
      const snapshots = new SnapshotStore(redis, keys);
      const [read] = await snapshots.readNodes(k.shard, [a]);
      const e = buildSnapshotEntry(a, read!.values, Date.now())!;
      await redis.del(k.dirty);
      await heartbeat(a, { lang: langOf(['de']) }); // en's last reference goes
      const result = await snapshots.publish(k.shard, {
        at: Date.now(), streamCap: 100, loadChangeThreshold: 5, removals: [],
        upserts: [{ id: a, entry: encodeEntry(e), values: publishedValues(e), stamp: read!.stamp }],
      }); // prettier-ignore
      expect(result.redirtied).toBe(1);
      expect(await redis.hexists(k.checkpoint, a)).toBe(0);
      expect(await redis.sismember(k.dirty, a)).toBe(1);
    });
  });
}
