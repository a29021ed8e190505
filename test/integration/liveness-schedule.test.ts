import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_LIVENESS } from '../../shared/queues.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { checkpointEntry, TestFleet } from '../support/fleet.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import {
  scrape,
  startTestGateway,
  startTestWorker,
  type TestGateway,
  type TestWorker,
} from '../support/service-harness.ts';

/**
 * Issue 11, defect 2: the liveness job scheduler (every timeout, failover, offline marking and
 * recount) lives in Redis. A Redis that comes back without its data must not stop them for
 * good: the worker creates the scheduler again by itself, and its /readyz says 503 meanwhile.
 * Its own Redis server: FLUSHALL and restarts must not touch the other tests' data.
 */
describe('the liveness scheduler survives a Redis that lost its data', () => {
  let server: RedisServerHandle;
  let redis: Redis;
  let worker: TestWorker;
  let gateway: TestGateway;
  const env = { SB_REAPER_INTERVAL_MS: '300', SB_NODE_TTL_MS: '1000' };

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url, { maxRetriesPerRequest: null });
    const prefix = uniquePrefix('liveness');
    worker = await startTestWorker(prefix, { redisUrl: server.url }, env);
    gateway = await startTestGateway(prefix, { redisUrl: server.url }, env);
  });
  afterAll(async () => {
    await gateway?.close();
    await worker?.close();
    redis?.disconnect();
    await server?.destroy();
  });

  const ticks = () => scrape(worker.metrics, 'sb_reaper_ticks_total');
  const restored = () => scrape(worker.metrics, 'sb_liveness_scheduler_restored_total');
  const readyz = async () => (await fetch(worker.metrics.replace('/metrics', '/readyz'))).status;

  /** A node that goes silent must still be marked offline by the reaper (the tick runs). */
  async function silentNodeGoesOffline(id: string): Promise<void> {
    const fleet = await TestFleet.connect(gateway.ws, [id]);
    try {
      fleet.heartbeat(0, 1);
      await waitFor(async () => (await checkpointEntry(redis, gateway.keys, id))?.status === 'ready', {
        timeoutMs: 10_000,
      });
      await waitFor(
        async () => (await redis.hget(gateway.keys.forNode(id).node(id), 'status')) === 'offline',
        { timeoutMs: 10_000, intervalMs: 50 },
      );
    } finally {
      await fleet.close();
    }
  }

  it('runs the tick before any fault (sanity)', async () => {
    await waitFor(async () => (await ticks()) >= 2, { timeoutMs: 10_000 });
    expect(await readyz()).toBe(200);
    expect(await restored()).toBe(0);
  });

  it('FLUSHALL: the scheduler is created again, ticks resume, a silent node goes offline', async () => {
    await redis.flushall();
    await waitFor(async () => (await restored()) >= 1, { timeoutMs: 10_000 });
    const after = await ticks();
    await waitFor(async () => (await ticks()) >= after + 2, { timeoutMs: 10_000 });
    expect(await readyz()).toBe(200);
    await silentNodeGoesOffline('after-flushall');
  });

  it('its next tick job lost (the scheduler still there): found overdue, scheduled again, ticks resume', async () => {
    // what a Cluster master that fails over can do: keep the scheduler, lose the job it added last
    const queue = new Queue(QUEUE_LIVENESS, { connection: redis, prefix: worker.keys.queuePrefix });
    try {
      await waitFor(async () => (await ticks()) >= 1, { timeoutMs: 10_000 });
      const stalls = await scrape(worker.metrics, 'sb_liveness_stalls_total');
      const lose = async () => {
        // BullMQ refuses to remove a scheduler's job: gone behind its back, as a replica lacks it
        const base = `${worker.keys.queuePrefix}:${QUEUE_LIVENESS}`;
        for (const job of await queue.getJobs(['delayed', 'waiting', 'prioritized'])) {
          await redis.zrem(`${base}:delayed`, job.id!);
          await redis.zrem(`${base}:prioritized`, job.id!);
          await redis.lrem(`${base}:wait`, 0, job.id!);
          await redis.del(`${base}:${job.id!}`);
        }
      };
      await waitFor(
        async () => {
          await lose();
          const before = await ticks();
          await new Promise((r) => setTimeout(r, 1000)); // > 3 intervals: nothing ticks any more
          return (await ticks()) === before;
        },
        { timeoutMs: 10_000 },
      );
      await waitFor(async () => (await scrape(worker.metrics, 'sb_liveness_stalls_total')) > stalls, {
        timeoutMs: 15_000,
      });
      const after = await ticks();
      await waitFor(async () => (await ticks()) >= after + 2, { timeoutMs: 10_000 });
      await silentNodeGoesOffline('after-lost-tick');
    } finally {
      await queue.close();
    }
  });

  it('a restart without persistence: the same, without restarting the worker', async () => {
    const before = await restored();
    await server.restart();
    await waitFor(async () => (await restored()) > before, { timeoutMs: 15_000 });
    await waitFor(async () => (await readyz()) === 200, { timeoutMs: 10_000 });
    const after = await ticks();
    await waitFor(async () => (await ticks()) >= after + 2, { timeoutMs: 10_000 });
    await silentNodeGoesOffline('after-restart');
  });
});
