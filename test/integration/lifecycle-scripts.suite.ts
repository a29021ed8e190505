import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeyBuilder, type ShardKeys } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { testConfig, type RedisTarget } from '../support/service-harness.ts';
import { uniquePrefix } from '../support/redis.ts';

/** Every return path of the job lifecycle scripts (ackJob, releaseJob, advanceJob). */
export function describeLifecycleScripts(label: string, target: () => RedisTarget): void {
  describe(`job lifecycle Lua scripts (${label})`, () => {
    let redis: RedisClient;
    let keys: KeyBuilder;
    let k: ShardKeys;
    let id: string;
    let job: string;
    let n = 0;
    const now = Date.now();

    beforeAll(async () => {
      const config = testConfig(uniquePrefix(), target());
      keys = new KeyBuilder(config.prefix, config.shards);
      redis = createRedisClient(config, createLogger('test', 'silent'), { name: 'test', mode: 'fail-fast' });
      await waitUntilReady(redis);
    });
    afterAll(async () => {
      await redis.quit();
    });
    beforeEach(async () => {
      id = `lc-node-${++n}`;
      job = `lc-job-${n}`;
      k = keys.forNode(id);
      await redis.hset(k.node(id), { status: 'ready', draining: 0, running: 0, reserved: 0, max_jobs: 3 });
      await redis.zadd(k.live, now, id);
      const [code] = await redis.reserveSlot(
        k.node(id),
        k.live,
        k.reservation(job),
        k.reservations,
        k.inbox(id),
        k.dirty,
        k.assignments,
        id,
        job,
        1,
        now,
        10_000,
        45_000,
        '{}',
        100,
      );
      expect(code).toBe(1);
      await redis.hset(keys.job(job), {
        job_id: job,
        status: 'dispatched',
        attempt_id: 1,
        node_id: id,
        attempts: JSON.stringify([{ attempt_id: 1, node_id: id, status: 'dispatched' }]),
      });
    });

    const slotArgs = () =>
      [k.node(id), k.reservation(job), k.reservations, k.running, k.inbox(id), k.dirty] as const;
    const ack = (attempt = 1, node = id) => redis.ackJob(...slotArgs(), node, job, attempt, now, 30_000);
    const release = (attempt = 1, node = id) => redis.releaseJob(...slotArgs(), node, job, attempt);
    const advance = (
      status: 'accepted' | 'running' | 'finished' | 'failed',
      attempt = 1,
      node = id,
      result = '',
    ) =>
      redis.advanceJob(
        keys.job(job),
        keys.jobIndexesOf(job).failed,
        attempt,
        status,
        now,
        result,
        '',
        node,
        500,
        keys.jobEventsOf(job),
        job,
      );
    const counts = async () => (await redis.hmget(k.node(id), 'reserved', 'committed')).map(Number);

    it('ackJob: commits the reservation once, out of the inbox, with a deadline', async () => {
      expect((await ack())[0]).toBe(1);
      expect(await counts()).toEqual([0, 1]);
      expect(await redis.exists(k.reservation(job))).toBe(0);
      expect(await redis.zcard(k.reservations)).toBe(0);
      expect(await redis.xlen(k.inbox(id))).toBe(0);
      expect(await redis.zscore(k.running, `${job}|${id}|1`)).toBe(String(now + 30_000));
      expect((await ack())[0]).toBe(2);
      expect(await counts()).toEqual([0, 1]);
    });

    it('ackJob: -1 for another attempt or another node, and nothing changes', async () => {
      expect((await ack(2))[0]).toBe(-1);
      expect((await ack(1, 'intruder'))[0]).toBe(-1);
      expect(await counts()).toEqual([1, 0]);
    });

    it('releaseJob: releases the running job once (1), then nothing (0)', async () => {
      await ack();
      expect((await release())[0]).toBe(1);
      expect(await counts()).toEqual([0, 0]);
      expect((await release())[0]).toBe(0);
      expect(await counts()).toEqual([0, 0]);
    });

    it('releaseJob: a result without an ack releases the reservation (2); a stale one nothing (0)', async () => {
      expect((await release(2))[0]).toBe(0);
      expect((await release())[0]).toBe(2);
      expect(await counts()).toEqual([0, 0]);
      expect(await redis.xlen(k.inbox(id))).toBe(0);
    });

    it('reconcileNode: recounts leaked counters from the sets it holds, and leaves right ones alone', async () => {
      await redis.hset(k.node(id), { reserved: 5, committed: 2 }); // drifted
      expect(await redis.reconcileNode(k.node(id), k.reservations, k.running, id)).toEqual([1, 1, 0]);
      expect(await counts()).toEqual([1, 0]);
      expect(await redis.reconcileNode(k.node(id), k.reservations, k.running, id)).toEqual([0, 1, 0]);
      await ack();
      expect(await redis.reconcileNode(k.node(id), k.reservations, k.running, id)).toEqual([0, 0, 1]);
    });

    it('expireSlot: releases an expired reservation or an overdue running job once, with job_cancel', async () => {
      const [[member]] = [await redis.zrange(k.reservations, '0', '-1')];
      const expire = (kind: 'reservation' | 'running', m: string) =>
        redis.expireSlot(
          k.node(id),
          k.reservation(job),
          k.reservations,
          k.running,
          k.inbox(id),
          k.dirty,
          k.assignments,
          kind,
          m,
          id,
          '{"type":"job_cancel"}',
          100,
        );
      const fed = await redis.xlen(k.assignments);
      expect((await expire('reservation', member!))[0]).toBe(1);
      expect(await redis.xlen(k.assignments)).toBe(fed + 1); // job_cancel for an unacked one too
      expect(await counts()).toEqual([0, 0]);
      expect(await redis.xlen(k.inbox(id))).toBe(0);
      expect((await expire('reservation', member!))[0]).toBe(0);
      expect((await ack())[0]).toBe(-1); // a late ack is stale
      await redis.zadd(k.running, now, `${job}|${id}|1`);
      await redis.hset(k.node(id), 'committed', 1);
      const feed = await redis.xlen(k.assignments);
      expect((await expire('running', `${job}|${id}|1`))[0]).toBe(1);
      expect(await counts()).toEqual([0, 0]);
      expect(await redis.xlen(k.assignments)).toBe(feed + 1);
    });

    it("appendPartial: kept in order for the current node's running job; another node's or a finished job's ignored", async () => {
      await redis.pexpire(keys.job(job), 60_000);
      const partial = (text: string, node = id) =>
        redis.appendPartial(
          keys.job(job),
          keys.partials(job),
          node,
          text,
          '0',
          now,
          100,
          keys.jobEventsOf(job),
          job,
        );
      expect(await partial('你')).toBe(1);
      expect(await partial('你好')).toBe(1);
      expect(await partial('intruder', 'other-node')).toBe(0);
      expect(
        await redis.appendPartial(
          keys.job('nope'),
          keys.partials('nope'),
          id,
          'x',
          '0',
          now,
          100,
          keys.jobEventsOf('nope'),
          'nope',
        ),
      ).toBe(-2);
      const entries = await redis.xrange(keys.partials(job), '-', '+');
      expect(entries.map(([, f]) => f[f.indexOf('text') + 1])).toEqual(['你', '你好']);
      expect(entries[0]![1]).toEqual(['attempt', '1', 'text', '你', 'final', '0', 'at', String(now)]);
      expect(await redis.pttl(keys.partials(job))).toBeGreaterThan(0); // expires with the job
      expect(await advance('finished', 1, id, '{}')).toBe(1);
      expect(await partial('too late')).toBe(0);
      expect(await redis.xlen(keys.partials(job))).toBe(2);
    });

    it('advanceJob: forward only, for the current attempt and node; terminal is final', async () => {
      expect(await advance('accepted')).toBe(1);
      expect(await advance('accepted')).toBe(0);
      expect(await advance('running')).toBe(1);
      expect(await advance('accepted')).toBe(0);
      expect(await advance('finished', 2)).toBe(-1);
      expect(await advance('finished', 1, 'intruder')).toBe(-1);
      expect(await advance('finished', 1, id, '{"text":"ok"}')).toBe(1);
      expect(await advance('failed')).toBe(0);
      const h = await redis.hgetall(keys.job(job));
      expect(h).toMatchObject({ status: 'finished', result: '{"text":"ok"}' });
      expect(JSON.parse(h['attempts']!)).toEqual([{ attempt_id: 1, node_id: id, status: 'finished' }]);
      expect(
        await redis.advanceJob(
          keys.job('nope'),
          keys.jobIndexesOf('nope').failed,
          1,
          'accepted',
          now,
          '',
          '',
          id,
          500,
          keys.jobEventsOf('nope'),
          'nope',
        ),
      ).toBe(-2);
      // a finished job is not in the failed index
      expect(await redis.zscore(keys.jobIndexesOf(job).failed, job)).toBeNull();
    });

    it("advanceJob: a failed job joins its shard's failed index, at its finished_at", async () => {
      expect(await advance('failed')).toBe(1);
      expect(await redis.zscore(keys.jobIndexesOf(job).failed, job)).toBe(String(now));
    });
  });
}
