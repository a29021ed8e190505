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
      await redis.del(k.dirty); // a test that filled a node left it dirty; a flush would take it
    });

    const reserve = (job: string, attempt = 1, at = now, claim = '') =>
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
        claim,
      );

    describe('reserveSlot', () => {
      it('reserves, records a TTL reservation, queues the assignment; the node is not republished for it', async () => {
        expect(await reserve('j1')).toEqual([1, 1, 1, 3, 0]);
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
        expect(await redis.sismember(k.dirty, id)).toBe(0);
      });

      it('marks the node dirty when a reservation fills it (free → full), and only then', async () => {
        expect((await reserve('f1'))[4]).toBe(0); // 1 running + 1 reserved of 3
        expect(await redis.sismember(k.dirty, id)).toBe(0);
        expect(await reserve('f2')).toEqual([1, 1, 2, 3, 1]); // full: dirty, and the set was empty
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

    describe('claimJob / repointJob / dropJob (job shard)', () => {
      const claim = (jobId: string, node: string, tenant = '', deadline = now + 9000, cap = 500, at = now) =>
        redis.claimJob(
          keys.job(jobId),
          keys.placing(keys.jobShardOf(jobId)),
          keys.openJobs(keys.jobShardOf(jobId)),
          keys.jobIndexesOf(jobId).recent,
          jobId,
          at,
          '{"a":1}',
          60_000,
          tenant,
          node,
          `{"node_id":"${node}"}`,
          deadline,
          'tok',
          '',
          jobId,
          '',
          5000,
          now + 20_000,
          cap,
        );

      it('claims a new id and records attempt 1 with the answer, unconfirmed; a repeat gets the job', async () => {
        const jobId = `job-${n}`;
        expect(await claim(jobId, 'n1', 'acme')).toEqual([1]);
        expect(await redis.pttl(keys.job(jobId))).toBeGreaterThan(50_000);
        // the job sweep's safety net: open from its claim, first looked at after the given time
        expect(await redis.zscore(keys.openJobs(keys.jobShardOf(jobId)), jobId)).toBe(String(now + 20_000));
        expect(await redis.hmget(keys.job(jobId), 'status', 'node_id', 'attempt_id', 'claim')).toEqual([
          'dispatched',
          'n1',
          '1',
          'tok',
        ]);
        expect(JSON.parse((await redis.hget(keys.job(jobId), 'attempts'))!)).toEqual([
          { attempt_id: 1, node_id: 'n1', status: 'dispatched' },
        ]);
        // the existing job's tenant and placing deadline come back, whoever asks
        expect(await claim(jobId, 'n2', 'other')).toEqual([
          0,
          'dispatched',
          '{"node_id":"n1"}',
          'acme',
          String(now + 9000),
        ]);
        // indexed once, at its creation time (the console's recent list)
        expect(await redis.zscore(keys.jobIndexesOf(jobId).recent, jobId)).toBe(String(now));
        await redis.zrem(keys.placing(keys.jobShardOf(jobId)), jobId); // confirmed
        expect((await claim(jobId, 'n2'))[4]).toBe('');
        expect(await redis.hget(keys.job(jobId), 'node_id')).toBe('n1');
      });

      it('re-points attempt 1 only from the node it names, while unconfirmed; drops only that placement', async () => {
        const jobId = `job-r${n}`;
        const job = keys.job(jobId);
        const placing = keys.placing(keys.jobShardOf(jobId));
        await claim(jobId, 'n1');
        expect(await redis.repointJob(job, placing, jobId, 'n9', 'n2', now, '{}', now + 1)).toBe(0);
        expect(
          await redis.repointJob(job, placing, jobId, 'n1', 'n2', now, '{"node_id":"n2"}', now + 20_000),
        ).toBe(1);
        expect(await redis.hmget(job, 'node_id', 'placement')).toEqual(['n2', '{"node_id":"n2"}']);
        expect(await redis.zscore(placing, jobId)).toBe(String(now + 20_000));
        expect(await redis.dropJob(job, placing, jobId, 'n1')).toBe(0);
        expect(await redis.dropJob(job, placing, jobId, 'n2')).toBe(1);
        expect(await redis.exists(job)).toBe(0);
        expect(await redis.zscore(placing, jobId)).toBeNull();
        expect(await claim(jobId, 'n3')).toEqual([1]); // the id is retryable
        await redis.hset(job, 'status', 'accepted'); // moved on: never dropped, never re-pointed
        expect(await redis.dropJob(job, placing, jobId, 'n3')).toBe(0);
        expect(await redis.repointJob(job, placing, jobId, 'n3', 'n4', now, '{}', now)).toBe(0);
      });
    });

    describe('claimJob: the recent index', () => {
      it('keeps the newest ids of the shard in the recent index, up to the cap', async () => {
        const ids = Array.from({ length: 6 }, (_, i) => `job-cap${n}-${i}`);
        for (const [i, jobId] of ids.entries())
          await redis.claimJob(
            keys.job(jobId),
            keys.placing(keys.jobShardOf(jobId)),
            keys.openJobs(keys.jobShardOf(jobId)),
            keys.jobIndexesOf(jobId).recent,
            jobId,
            now + 100 + i,
            '{}',
            60_000,
            '',
            'n1',
            '{}',
            now + 9000,
            'tok',
            '',
            jobId,
            '',
            5000,
            now + 20_000,
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
    });

    describe('fenceReservation', () => {
      it('answers held for a reservation or an acked slot of attempt 1; otherwise fences that claim', async () => {
        const fence = (job: string, token: string) =>
          redis.fenceReservation(k.reservation(job), k.running, id, job, token, 60_000);
        await reserve('h1', 1, now, 'tok1');
        expect(await fence('h1', 'tok1')).toBe(1);
        await redis.zadd(k.running, now + 1000, `h2|${id}|1`);
        expect(await fence('h2', 'tok2')).toBe(1);
        expect(await fence('h3', 'tok3')).toBe(0);
        expect(await redis.get(k.reservation('h3'))).toBe('fenced:tok3');
        // a reservation still on its way for that claim is refused; another claim's goes through
        expect((await reserve('h3', 1, now, 'tok3'))[0]).toBe(-6);
        expect(await redis.hget(k.node(id), 'reserved')).toBe('1');
        expect((await reserve('h3', 1, now, 'tok4'))[0]).toBe(1);
      });
    });

    describe('setDrain', () => {
      it('sets and clears the flag and marks the node dirty; -1 for an unknown node', async () => {
        expect(await redis.setDrain(k.node(id), k.dirty, id, '1', now, 'ops')).toEqual([1, 1]);
        expect(await redis.hget(k.node(id), 'draining')).toBe('1');
        expect((await redis.setDrain(k.node(id), k.dirty, id, '0', now, 'ops'))[0]).toBe(1);
        expect(await redis.hget(k.node(id), 'draining')).toBeNull(); // its absence means 0
        expect(await redis.setDrain(k.node('ghost'), k.dirty, 'ghost', '1', now, 'ops')).toEqual([-1, 0]);
      });
    });
  });
}
