import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeyBuilder, type ShardKeys } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { testConfig, type RedisTarget } from '../support/service-harness.ts';
import { uniquePrefix } from '../support/redis.ts';

/** Every return path of the selector's Lua scripts, against a real Redis (standalone or Cluster). */
export function describeSelectorScripts(label: string, target: () => RedisTarget): void {
  describe(`selector Lua scripts (${label})`, () => {
    let redis: RedisClient;
    let keys: KeyBuilder;
    let k: ShardKeys;
    let id: string;
    let n = 0;
    const now = 1_000_000;

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
      id = `sel-node-${++n}`;
      k = keys.forNode(id);
      await redis.hset(k.node(id), { status: 'ready', draining: 0, running: 1, reserved: 0, max_jobs: 3 });
      await redis.zadd(k.live, now - 1000, id);
    });

    const reserve = (job: string, attempt = 1, at = now) =>
      redis.reserveSlot(
        k.node(id),
        k.live,
        k.reservation(job),
        k.reservations,
        k.inbox(id),
        k.dirty,
        k.assignments,
        id,
        job,
        attempt,
        at,
        10_000,
        45_000,
        `{"type":"job_assign","job_id":"${job}"}`,
        100,
      );

    describe('reserveSlot', () => {
      it('reserves, records a TTL reservation, queues the assignment and marks the node dirty', async () => {
        expect(await reserve('j1')).toEqual([1, 1, 1, 3, 1]);
        expect(await redis.hget(k.node(id), 'reserved')).toBe('1');
        const entryId = (await redis.xrange(k.inbox(id), '-', '+'))[0]?.[0];
        expect(await redis.get(k.reservation('j1'))).toBe(`${id}|1|${entryId}`);
        expect(await redis.xlen(k.assignments)).toBe(1);
        expect(await redis.pttl(k.reservation('j1'))).toBeGreaterThan(9000);
        expect(await redis.zscore(k.reservations, `j1|${id}|1|${entryId}`)).toBe(String(now + 10_000));
        const [first] = await redis.xrange(k.inbox(id), '-', '+');
        expect(first?.[1]).toEqual([
          'type',
          'job_assign',
          'job',
          'j1',
          'attempt',
          '1',
          'frame',
          '{"type":"job_assign","job_id":"j1"}',
        ]);
        expect(await redis.sismember(k.dirty, id)).toBe(1);
      });

      it('is idempotent per job and attempt (2, nothing changes)', async () => {
        await reserve('j1');
        expect((await reserve('j1'))[0]).toBe(2);
        expect(await redis.hget(k.node(id), 'reserved')).toBe('1');
        expect(await redis.xlen(k.inbox(id))).toBe(1);
      });

      it('refuses at capacity: running + reserved >= max (-5)', async () => {
        expect((await reserve('a'))[0]).toBe(1);
        expect((await reserve('b'))[0]).toBe(1);
        expect(await reserve('c')).toEqual([-5, 1, 2, 3, 0]);
        expect(await redis.hget(k.node(id), 'reserved')).toBe('2');
      });

      it.each([
        ['a node that is not ready (-2)', { status: 'degraded' }, -2],
        ['a draining node (-3)', { draining: 1 }, -3],
      ])('refuses %s', async (_name, fields, code) => {
        await redis.hset(k.node(id), fields);
        expect((await reserve('j'))[0]).toBe(code);
        expect(await redis.exists(k.reservation('j'))).toBe(0);
      });

      it('refuses a node silent for longer than the node TTL (-4) and an unknown node (-1)', async () => {
        expect((await reserve('j', 1, now + 60_000))[0]).toBe(-4);
        await redis.del(k.node(id));
        expect((await reserve('j'))[0]).toBe(-1);
      });
    });

    describe('createJob', () => {
      it('claims a new id once; a second claim reports the existing job', async () => {
        const job = keys.job(`job-${n}`);
        const recent = keys.jobIndexesOf(`job-${n}`).recent;
        expect(
          await redis.createJob(job, recent, `job-${n}`, now, '{"a":1}', 60_000, 0, 'acme', 500),
        ).toEqual([1]);
        expect(await redis.pttl(job)).toBeGreaterThan(50_000);
        // the existing job's tenant comes back, whoever asks: the caller compares
        expect(
          await redis.createJob(job, recent, `job-${n}`, now, '{"a":2}', 60_000, 0, 'other', 500),
        ).toEqual([0, 'created', '', 'acme']);
        await redis.hset(job, { status: 'dispatched', placement: '{"node_id":"x"}' });
        expect(await redis.createJob(job, recent, `job-${n}`, now, '{}', 60_000, 0, '', 500)).toEqual([
          0,
          'dispatched',
          '{"node_id":"x"}',
          'acme',
        ]);
        expect(await redis.hget(job, 'request')).toBe('{"a":1}');
        // indexed once, at its creation time
        expect(await redis.zscore(recent, `job-${n}`)).toBe(String(now));
      });

      it('keeps the newest ids of the shard in the recent index, up to the cap', async () => {
        const ids = Array.from({ length: 6 }, (_, i) => `job-cap${n}-${i}`);
        for (const [i, jobId] of ids.entries())
          await redis.createJob(
            keys.job(jobId),
            keys.jobIndexesOf(jobId).recent,
            jobId,
            now + 100 + i,
            '{}',
            60_000,
            0,
            '',
            2,
          );
        for (const jobId of ids) {
          const own = ids.filter(
            (other) => keys.jobIndexesOf(other).recent === keys.jobIndexesOf(jobId).recent,
          );
          const kept = await redis.zrange(keys.jobIndexesOf(jobId).recent, '0', '-1');
          expect(kept.filter((id) => id.startsWith(`job-cap${n}-`))).toEqual(own.slice(-2));
        }
      });

      it('claims again a job left `created` before the abandoned-before time, and only such a job', async () => {
        const job = keys.job(`job-a${n}`);
        const recent = keys.jobIndexesOf(`job-a${n}`).recent;
        expect(await redis.createJob(job, recent, `job-a${n}`, now, '{"a":1}', 60_000, 0, '', 500)).toEqual([
          1,
        ]);
        // claimed at `now`: not abandoned before `now`
        expect(
          await redis.createJob(job, recent, `job-a${n}`, now + 5000, '{"a":2}', 60_000, now, '', 500),
        ).toEqual([0, 'created', '', '']);
        expect(
          await redis.createJob(job, recent, `job-a${n}`, now + 5000, '{"a":2}', 60_000, now + 1, '', 500),
        ).toEqual([1]);
        expect(await redis.hmget(job, 'created_at', 'request')).toEqual([String(now + 5000), '{"a":2}']);
        await redis.hset(job, { status: 'dispatched', node_id: 'x' });
        expect(
          await redis.createJob(job, recent, `job-a${n}`, now + 9000, '{}', 60_000, now + 8000, '', 500),
        ).toEqual([0, 'dispatched', '', '']);
      });
    });

    describe('setDrain', () => {
      it('sets and clears the flag and marks the node dirty; -1 for an unknown node', async () => {
        expect(await redis.setDrain(k.node(id), k.dirty, id, '1')).toEqual([1, 1]);
        expect(await redis.hget(k.node(id), 'draining')).toBe('1');
        expect((await redis.setDrain(k.node(id), k.dirty, id, '0'))[0]).toBe(1);
        expect(await redis.hget(k.node(id), 'draining')).toBe('0');
        expect(await redis.setDrain(k.node('ghost'), k.dirty, 'ghost', '1')).toEqual([-1, 0]);
      });
    });
  });
}
