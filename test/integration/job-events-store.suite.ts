import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { JobEvents } from '../../shared/store/job-events.ts';
import { redisTopology, type SubscriberTopology } from '../../shared/store/shard-subscriber.ts';
import { testConfig, type RedisTarget } from '../support/service-harness.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';

/**
 * The store side of pushed results (shared/store/job-events.ts) against a real Redis: the job
 * scripts announce, one subscription per job shard wakes the job's watches, and a subscription
 * lost and restored wakes every watch of its shards (`resync`) for what it may have missed.
 */
export function describeJobEventsStore(label: string, target: () => RedisTarget): void {
  describe(`job events store (${label})`, () => {
    const log = createLogger('test', 'silent');
    let redis: RedisClient;
    let keys: KeyBuilder;
    let hub: JobEvents;
    const connections: Redis[] = [];
    let n = 0;

    /** A job record on attempt 1 of node `n1`, as placement leaves it. */
    const job = async (status = 'accepted'): Promise<string> => {
      const id = `ev-${label.replace(/\W/g, '')}-${++n}`;
      await redis.hset(keys.job(id), {
        status,
        attempt_id: 1,
        node_id: 'n1',
        attempts: JSON.stringify([{ attempt_id: 1, node_id: 'n1', status }]),
      });
      return id;
    };
    const advance = (id: string, status: 'running' | 'finished') =>
      redis.advanceJob(
        keys.job(id),
        keys.jobIndexesOf(id).failed,
        1,
        status,
        Date.now(),
        '',
        '',
        'n1',
        500,
        keys.jobEventsOf(id),
        id,
      );

    beforeAll(async () => {
      const config = testConfig(uniquePrefix('events'), target());
      keys = new KeyBuilder(config.prefix, config.shards);
      redis = createRedisClient(config, log, { name: 'test', mode: 'fail-fast' });
      await waitUntilReady(redis);
      const topology = redisTopology(config, redis, log, 'test-events');
      const recording: SubscriberTopology = {
        ...topology,
        connect: (node) => {
          const c = topology.connect(node);
          connections.push(c);
          return c;
        },
      };
      hub = new JobEvents(keys, recording, { maxWaiters: 3, fallbackMs: 60_000 }, log);
      hub.start();
      await waitFor(() => hub.subscribedShards === keys.shards, { timeoutMs: 10_000 });
    });
    afterAll(async () => {
      hub?.close();
      await redis?.quit();
    });

    it('advanceJob, appendPartial and failoverJob announce; only the watches of that job wake', async () => {
      const id = await job();
      const other = await job();
      const watch = hub.watch(id);
      const bystander = hub.watch(other);
      try {
        expect(await advance(id, 'running')).toBe(1);
        expect(await watch.next(20_000)).toBe('event');
        const partial = await redis.appendPartial(
          keys.job(id),
          keys.partials(id),
          'n1',
          '你好',
          '0',
          Date.now(),
          100,
          keys.jobEventsOf(id),
          id,
        );
        expect(partial).toBe(1);
        expect(await watch.next(20_000)).toBe('event');
        const failed = await redis.failoverJob(
          keys.job(id),
          keys.openJobs(keys.jobShardOf(id)),
          keys.jobIndexesOf(id).failed,
          1,
          'job_timeout',
          Date.now(),
          1,
          id,
          Date.now() + 60_000,
          500,
          keys.jobEventsOf(id),
        );
        expect(failed).toEqual([2]);
        expect(await watch.next(20_000)).toBe('event');
        expect(await bystander.next(50)).toBe('timeout');
      } finally {
        watch.close();
        bystander.close();
      }
      expect(hub.waiters).toBe(0);
    });

    it('a filter leaves out the announcements a watch does not want', async () => {
      const id = await job();
      const watch = hub.watch(id, (kind) => kind === 'finished');
      try {
        await advance(id, 'running');
        expect(await watch.next(300)).toBe('timeout');
        await advance(id, 'finished');
        expect(await watch.next(20_000)).toBe('event');
      } finally {
        watch.close();
      }
    });

    it('an announcement made while the subscriptions are down wakes the watch when they are back (resync)', async () => {
      const id = await job();
      const watch = hub.watch(id);
      try {
        for (const c of connections) c.disconnect();
        await waitFor(() => hub.subscribedShards === 0);
        expect(await advance(id, 'finished')).toBe(1); // announced to no one
        const woke = watch.next(20_000);
        for (const c of connections.filter((c) => c.status === 'end'))
          void c.connect().catch(() => undefined);
        expect(await woke).toBe('resync');
        await waitFor(() => hub.subscribedShards === keys.shards, { timeoutMs: 10_000 });
      } finally {
        watch.close();
      }
    });

    it('refuses watches beyond maxWaiters with RATE_LIMITED; closing one makes room', async () => {
      const watches = await Promise.all([job(), job(), job()]).then((ids) => ids.map((id) => hub.watch(id)));
      expect(() => hub.watch('one-too-many')).toThrow(
        expect.objectContaining({ code: 'RATE_LIMITED', status: 429 }),
      );
      watches[0]!.close();
      expect(await watches[0]!.next(20_000)).toBe('closed');
      const again = hub.watch('one-more');
      for (const w of [...watches, again]) w.close();
      expect(hub.waiters).toBe(0);
    });
  });
}
