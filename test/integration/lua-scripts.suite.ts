import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { capabilityPart } from '../../shared/capability-digest.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { testConfig, type RedisTarget } from '../support/service-harness.ts';
import { uniquePrefix } from '../support/redis.ts';

const part = (value: unknown) => capabilityPart(value);

/**
 * Every return path of every gateway Lua script, against a real Redis (standalone or Cluster).
 */
export function describeGatewayScripts(label: string, target: () => RedisTarget): void {
  describe(`gateway Lua scripts (${label})`, () => {
    let redis: RedisClient;
    let keys: KeyBuilder;
    let n = 0;
    let nodeId: string;

    beforeAll(async () => {
      const config = testConfig(uniquePrefix(), target());
      keys = new KeyBuilder(config.prefix, config.shards);
      redis = createRedisClient(config, createLogger('test', 'silent'), { name: 'test', mode: 'fail-fast' });
      await waitUntilReady(redis);
    });
    afterAll(async () => {
      await redis.quit();
    });
    beforeEach(() => {
      nodeId = `node-${++n}`;
    });

    const k = () => keys.forNode(nodeId);
    const node = () => k().node(nodeId);
    const field = async (name: string) => redis.hget(node(), name);
    /** A part's blob: by its digest, in the shard's caps hash. */
    const blob = async (part: string) => redis.hget(k().caps, (await field(`dg_${part}`)) ?? '');

    function register(opts: { gpu?: number; lang?: unknown; generated?: boolean; id?: string } = {}) {
      const id = opts.id ?? nodeId;
      const s = keys.forNode(id);
      const st = part({ hardware: 'x' });
      const svc = part({ capability_by_type: [{ type: 'asr', ready: true }] });
      const lang = part(opts.lang ?? { asr_languages: ['en'] });
      return redis.registerNode(
        s.node(id),
        s.live,
        s.offline,
        s.dirty,
        s.caps,
        s.capRefs,
        id,
        Date.now(),
        opts.gpu ?? 1,
        4,
        st.digest,
        st.blob,
        svc.digest,
        svc.blob,
        lang.digest,
        lang.blob,
        opts.generated ? 1 : 0,
      );
    }

    interface Hb {
      ts?: number;
      now?: number;
      cpu?: number;
      gpu?: number | '';
      mem?: number;
      running?: number;
      ready?: 0 | 1;
      requireGpu?: 0 | 1;
      svc?: unknown;
      lang?: unknown;
      threshold?: number;
      maxAgeMs?: number;
      /** Send digests only, as a gateway does when it believes Redis holds them. */
      noBlobs?: boolean;
      reorderMs?: number;
    }
    function heartbeat(h: Hb = {}) {
      const svc = part(h.svc ?? { capability_by_type: [{ type: 'asr', ready: true }] });
      const lang = h.lang == null ? null : part(h.lang);
      return redis.recordHeartbeat(
        node(),
        k().live,
        k().offline,
        k().dirty,
        k().published,
        k().caps,
        k().capRefs,
        nodeId,
        h.ts ?? Date.now(),
        h.now ?? Date.now(),
        h.cpu ?? 10,
        h.gpu ?? 20,
        '',
        h.mem ?? 30,
        h.running ?? 0,
        h.ready ?? 1,
        h.requireGpu ?? 1,
        svc.digest,
        h.noBlobs ? '' : svc.blob,
        lang?.digest ?? '',
        h.noBlobs ? '' : (lang?.blob ?? ''),
        h.threshold ?? 5,
        h.maxAgeMs ?? 30000,
        3,
        h.reorderMs ?? 5000,
      );
    }
    const markOffline = (epoch: number | '', cutoff: number | '' = '') =>
      redis.markOffline(node(), k().live, k().offline, k().dirty, nodeId, epoch, Date.now(), cutoff);
    /** Pretends a flush published the node's current values. */
    async function publishCurrent(at = Date.now()) {
      const [status, running, cpu, gpu, mem] = await redis.hmget(
        node(),
        'status',
        'running',
        'cpu',
        'gpu_pct',
        'mem',
      );
      await redis.hset(node(), 'pub', `${status}|${running}|${cpu}|${gpu}|${mem}|${at}`);
      await redis.del(k().dirty);
    }

    describe('registerNode', () => {
      it('registers a new node: epoch 1, capability changed, dirty set was empty, new', async () => {
        expect(await register()).toEqual([1, 1, 1, 1]);
        const record = await redis.hgetall(node());
        expect(record).toMatchObject({ status: 'registering', epoch: '1', gpu: '1', max_jobs: '4' });
        // what a field's absence means is not written (reserved 0, running 0, not draining)
        expect(Object.keys(record).sort()).toEqual(
          ['chg_at', 'dg_lang', 'dg_static', 'dg_svc', 'epoch', 'gpu', 'h0', 'hb_at', 'hb_ts', 'max_jobs', 'status'],
        ); // prettier-ignore
        expect(await redis.exists(k().nodes)).toBe(0); // the node list is :live ∪ :offline
        expect(await redis.zscore(k().live, nodeId)).not.toBeNull();
        expect(await redis.sismember(k().dirty, nodeId)).toBe(1);
      });

      it('re-registers with the same capabilities: new epoch, no change, keeps reserved and draining', async () => {
        await register();
        await redis.hset(node(), { reserved: 2, draining: 1 });
        expect(await register()).toEqual([2, 0, 0, 0]);
        expect(await redis.hmget(node(), 'reserved', 'draining', 'status')).toEqual([
          '2',
          '1',
          'registering',
        ]);
      });

      it('reports a capability change when a part changes', async () => {
        await register();
        expect((await register())[1]).toBe(0);
        expect((await register({ lang: { asr_languages: ['en', 'zh'] } }))[1]).toBe(1);
      });

      it('refuses a generated id that already exists, writing nothing', async () => {
        await register();
        expect(await register({ generated: true })).toEqual([-1, 0, 0, 0]);
        expect(await field('epoch')).toBe('1');
      });

      it('brings an offline node back out of the offline set', async () => {
        await register();
        await markOffline(1);
        await register();
        expect(await redis.zscore(k().offline, nodeId)).toBeNull();
        expect(await redis.zscore(k().live, nodeId)).not.toBeNull();
      });
    });

    describe('recordHeartbeat', () => {
      it('returns -1 for an unknown node and writes nothing', async () => {
        expect(await heartbeat()).toEqual([-1, '', 0, 0]);
        expect(await redis.exists(node())).toBe(0);
        expect(await redis.zscore(k().live, nodeId)).toBeNull();
      });

      it('ignores the load of a reordered older heartbeat (0) but refreshes liveness; applies an equal one', async () => {
        await register();
        expect((await heartbeat({ ts: 1000, now: 50_000, cpu: 11 }))[0]).toBe(1);
        expect(await heartbeat({ ts: 999, now: 60_000, cpu: 99 })).toEqual([0, 'ready', 0, 0]);
        expect(await field('cpu')).toBe('11');
        expect(await field('hb_ts')).toBe('1000');
        expect(await redis.zscore(k().live, nodeId)).toBe('60000');
        expect(await field('hb_at')).toBe('60000');
        expect((await heartbeat({ ts: 1000, cpu: 12 }))[0]).toBe(1);
        expect(await field('cpu')).toBe('12');
      });

      it('a clock jump back past the reorder window is applied (3): a future timestamp never silences a node', async () => {
        await register();
        const hourAhead = Date.now() + 3_600_000;
        expect((await heartbeat({ ts: hourAhead, cpu: 11 }))[0]).toBe(1);
        const back = Date.now();
        expect((await heartbeat({ ts: back, cpu: 42, reorderMs: 5000 })).slice(0, 2)).toEqual([3, 'ready']);
        expect(await field('cpu')).toBe('42');
        expect(await field('hb_ts')).toBe(String(back));
        expect((await heartbeat({ ts: back + 1000, cpu: 43 }))[0]).toBe(1);
        expect(await field('cpu')).toBe('43');
      });

      it('a reordered heartbeat does not bring an offline node back', async () => {
        await register();
        await heartbeat({ ts: 1000 });
        expect((await markOffline(''))[0]).toBe(1);
        expect((await heartbeat({ ts: 999 }))[0]).toBe(0);
        expect(await field('status')).toBe('offline');
        expect(await redis.zscore(k().live, nodeId)).toBeNull();
      });

      it('writes load, server time and liveness', async () => {
        await register();
        await heartbeat({ ts: 5, now: 1234567, cpu: 42, gpu: '', mem: 61, running: 2 });
        expect(await redis.hmget(node(), 'cpu', 'gpu_pct', 'mem', 'running', 'hb_ts', 'hb_at')).toEqual([
          '42',
          '',
          '61',
          '2',
          '5',
          '1234567',
        ]);
        expect(await redis.zscore(k().live, nodeId)).toBe('1234567');
      });

      it('status: registering -> ready on a healthy heartbeat, stays registering on an unhealthy one', async () => {
        await register();
        expect((await heartbeat({ ready: 0 }))[1]).toBe('registering');
        expect((await heartbeat({ ready: 1 }))[1]).toBe('ready');
      });

      it('status: ready -> degraded after 3 unhealthy heartbeats, degraded -> ready on a healthy one', async () => {
        await register();
        await heartbeat();
        expect((await heartbeat({ ready: 0 }))[1]).toBe('ready');
        expect((await heartbeat({ ready: 0 }))[1]).toBe('ready');
        expect((await heartbeat({ ready: 0 }))[1]).toBe('degraded');
        expect(await field('unhealthy')).toBe('3');
        expect((await heartbeat({ ready: 1 }))[1]).toBe('ready');
        expect(await field('unhealthy')).toBeNull(); // 0: not stored
        expect((await heartbeat({ ready: 0 }))[1]).toBe('ready');
      });

      it('status: without a GPU a heartbeat is healthy only when GPUs are not required', async () => {
        await register({ gpu: 0 });
        expect((await heartbeat({ requireGpu: 1 }))[1]).toBe('registering');
        expect((await heartbeat({ requireGpu: 0 }))[1]).toBe('ready');
      });

      it('status: offline -> ready when healthy, -> degraded when not; leaves the offline set', async () => {
        await register();
        await markOffline(1);
        expect((await heartbeat({ ready: 0 }))[1]).toBe('degraded');
        expect(await redis.zscore(k().offline, nodeId)).toBeNull();
        await markOffline(1);
        expect((await heartbeat())[1]).toBe('ready');
      });

      it('stores a capability part only when its digest changes; lang may be omitted', async () => {
        await register();
        expect((await heartbeat())[2]).toBe(0);
        const svc = {
          capability_by_type: [
            { type: 'asr', ready: true },
            { type: 'tts', ready: true },
          ],
        };
        expect((await heartbeat({ svc }))[2]).toBe(1);
        expect(await blob('svc')).toBe(part(svc).blob);
        expect((await heartbeat({ svc }))[2]).toBe(0);
        expect((await heartbeat({ svc, lang: null }))[2]).toBe(0);
        expect((await heartbeat({ svc, lang: { asr_languages: ['fr'] } }))[2]).toBe(1);
        expect(await blob('lang')).toBe(part({ asr_languages: ['fr'] }).blob);
      });

      it('accepts digests without blobs when they match, answers 2 and writes nothing when one differs', async () => {
        await register();
        expect((await heartbeat({ noBlobs: true, lang: { asr_languages: ['en'] }, cpu: 11 }))[0]).toBe(1);
        expect(await field('cpu')).toBe('11');
        const before = await redis.hgetall(node());
        expect(await heartbeat({ noBlobs: true, lang: { asr_languages: ['de'] }, cpu: 12 })).toEqual([
          2,
          'ready',
          0,
          0,
        ]);
        expect(await heartbeat({ noBlobs: true, svc: { capability_by_type: [] }, cpu: 12 })).toEqual([
          2,
          'ready',
          0,
          0,
        ]);
        expect(await redis.hgetall(node())).toEqual(before);
      });

      it('marks dirty only on a significant change against the published entry', async () => {
        await register();
        await heartbeat({ cpu: 10, gpu: 20, mem: 30 });
        await publishCurrent();
        const dirty = async () => (await redis.sismember(k().dirty, nodeId)) === 1;

        expect((await heartbeat({ cpu: 14, gpu: 24, mem: 34 }))[3]).toBe(0);
        expect(await dirty()).toBe(false);

        expect((await heartbeat({ cpu: 16 }))[3]).toBe(1); // moved > 5 points; set was empty
        expect(await dirty()).toBe(true);
        expect((await heartbeat({ cpu: 30 }))[3]).toBe(0); // already dirty: nothing to report

        const changes: [Hb, number][] = [
          [{ running: 1 }, 1],
          [{ ready: 0 }, 3], // ready -> degraded takes 3 unhealthy heartbeats
          [{ gpu: 40 }, 1],
        ];
        for (const [change, times] of changes) {
          await heartbeat({ cpu: 10, gpu: 20, mem: 30 });
          await publishCurrent();
          for (let i = 0; i < times; i++) await heartbeat({ cpu: 10, gpu: 20, mem: 30, ...change });
          expect(await dirty(), JSON.stringify(change)).toBe(true);
        }
      });

      it('marks dirty when the published entry is older than the max age', async () => {
        await register();
        await heartbeat();
        await publishCurrent(Date.now() - 60_000);
        expect((await heartbeat({ maxAgeMs: 30_000 }))[3]).toBe(1);
      });

      it('compares with values published before they moved into the record, and moves them', async () => {
        await register();
        await heartbeat({ cpu: 10, gpu: 20, mem: 30 });
        await publishCurrent();
        // as the earlier layout kept them: in the shard's hash, not the record
        const values = await field('pub');
        await redis.hdel(node(), 'pub');
        await redis.hset(k().published, nodeId, values!);
        expect((await heartbeat({ cpu: 12, gpu: 20, mem: 30 }))[3]).toBe(0); // not significant
        expect(await redis.sismember(k().dirty, nodeId)).toBe(0);
        expect(await field('pub')).toBe(values);
        expect(await redis.hexists(k().published, nodeId)).toBe(0);
        expect((await heartbeat({ cpu: 40, gpu: 20, mem: 30 }))[3]).toBe(1); // against the moved values
      });
    });

    describe('markOffline', () => {
      it('returns -1 for an unknown node', async () => {
        expect(await markOffline(1)).toEqual([-1, 0]);
      });

      it('ignores a close of an older epoch (the node reconnected)', async () => {
        await register();
        await register();
        expect(await markOffline(1)).toEqual([0, 0]);
        expect(await field('status')).toBe('registering');
      });

      it('marks the current epoch offline once, moving it from live to offline', async () => {
        await register();
        await redis.del(k().dirty);
        expect(await markOffline(1)).toEqual([1, 1]);
        expect(await field('status')).toBe('offline');
        expect(await redis.zscore(k().live, nodeId)).toBeNull();
        expect(await redis.zscore(k().offline, nodeId)).not.toBeNull();
        expect(await markOffline(1)).toEqual([0, 0]);
      });

      it("with no epoch ('' = the reaper) marks any epoch offline", async () => {
        await register();
        await register();
        expect((await markOffline(''))[0]).toBe(1);
      });
    });

    describe('recordNodeError', () => {
      it('returns -1 for an unknown node, 1 and stores the error for a known one', async () => {
        expect(await redis.recordNodeError(node(), '{}', Date.now())).toBe(-1);
        await register();
        expect(await redis.recordNodeError(node(), '{"code":"E"}', 77)).toBe(1);
        expect(await redis.hmget(node(), 'last_error', 'last_error_at', 'errors')).toEqual([
          '{"code":"E"}',
          '77',
          '1',
        ]);
      });
    });
  });
}
