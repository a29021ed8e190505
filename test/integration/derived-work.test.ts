import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_SNAPSHOT_FLUSH } from '../../shared/queues.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { JOIN_TOKEN, startTestGateway, type TestGateway } from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { TestSocket } from '../support/ws-client.ts';

const bullConnection = () => ({
  host: '127.0.0.1',
  port: Number(new URL(redisUrl()).port),
  maxRetriesPerRequest: null,
});

/** Counts `added` events in a BullMQ queue's event stream: every real add, deduplicated or not. */
async function addedEvents(redis: Redis, prefix: string, queue: string): Promise<number> {
  const entries = await redis.xrange(`${prefix}:${queue}:events`, '-', '+');
  return entries.filter(([, fields]) => fields[0] === 'event' && fields[1] === 'added').length;
}

describe('derived work enqueued by the gateway', () => {
  let gw: TestGateway;
  let redis: Redis;

  beforeAll(async () => {
    gw = await startTestGateway(
      uniquePrefix(),
      { redisUrl: redisUrl() },
      { SB_WS_RATE_LIMIT: '100000', SB_WS_MAX_QUEUED: '2000' },
    );
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  const flushAdds = () => addedEvents(redis, gw.keys.queuePrefix, QUEUE_SNAPSHOT_FLUSH);
  /** The queues a job was ever added to under the deployment's prefix (BullMQ's `:id` counter). */
  const queuesWithJobs = async () =>
    (await redis.keys(`${gw.keys.queuePrefix}:*:id`))
      .map((key) => key.slice(gw.keys.queuePrefix.length + 1, -':id'.length))
      .sort();

  it('registration, 1,000 unchanged heartbeats, an equal reordered list and a real change enqueue no job but flushes', async () => {
    const id = 'derived-1';
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_register', registerBody({ node_id: id })));
    await socket.nextOfType('node_register_ack');
    const node = gw.keys.forNode(id).node(id);
    const langDigest = await redis.hget(node, 'dg_lang');
    expect(langDigest).toBeTruthy();

    const start = Date.now();
    for (let i = 1; i <= 1000; i++) {
      socket.send(
        frame(
          'node_heartbeat',
          heartbeatBody(id, { timestamp: start + i }, { cpu_percent: i % 100, running_jobs: i % 3 }),
        ),
      );
    }
    await waitFor(async () => (await redis.hget(node, 'hb_ts')) === String(start + 1000), {
      timeoutMs: 15000,
    });
    expect(await redis.hget(node, 'dg_lang')).toBe(langDigest);

    // The same capabilities with every list reversed and every object's keys reordered.
    const reg = registerBody();
    const reorder = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).reverse());
    const lang = reg['language_capabilities'] as Record<string, string[]>;
    const reordered = heartbeatBody(id, {
      timestamp: start + 2000,
      installed_services: (reg['installed_services'] as Record<string, unknown>[]).map(reorder).reverse(),
      capability_by_type: (reg['capability_by_type'] as Record<string, unknown>[]).map(reorder).reverse(),
      language_capabilities: reorder({ ...lang, asr_languages: [...lang['asr_languages']!].reverse() }),
    });
    socket.send(frame('node_heartbeat', reordered));
    await waitFor(async () => (await redis.hget(node, 'hb_ts')) === String(start + 2000));
    expect(await redis.hget(node, 'dg_lang')).toBe(langDigest);

    // One real change: a new ASR language.
    socket.send(
      frame(
        'node_heartbeat',
        heartbeatBody(id, {
          timestamp: start + 3000,
          language_capabilities: { ...lang, asr_languages: ['zh', 'en', 'ja', 'ko'] },
        }),
      ),
    );
    await waitFor(async () => (await redis.hget(node, 'hb_ts')) === String(start + 3000));
    expect(await redis.hget(node, 'dg_lang')).not.toBe(langDigest);
    // pools are derived by the flush: nothing but a flush is ever asked for (issue 13)
    expect(await queuesWithJobs()).toEqual([QUEUE_SNAPSHOT_FLUSH]);
    expect(await flushAdds()).toBeGreaterThan(0);
    expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);
    await socket.close();
  });

  it('enqueues a snapshot flush only when the shard dirty set becomes non-empty', async () => {
    const id = 'derived-2';
    const shard = gw.keys.forNode(id);
    // Stands in for the worker's flush: publish the dirty nodes' current values, empty the set.
    const flusher = new Worker(
      QUEUE_SNAPSHOT_FLUSH,
      async () => {
        for (const member of await redis.smembers(shard.dirty)) {
          const [status, running, cpu, gpu, mem] = await redis.hmget(
            shard.node(member),
            'status',
            'running',
            'cpu',
            'gpu_pct',
            'mem',
          );
          await redis.hset(
            shard.node(member),
            'pub',
            `${status}|${running}|${cpu}|${gpu}|${mem}|${Date.now()}`,
          );
          await redis.srem(shard.dirty, member);
        }
      },
      { connection: bullConnection(), prefix: gw.keys.queuePrefix },
    );
    try {
      await redis.del(shard.dirty);
      const before = await flushAdds();
      const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
      socket.send(frame('node_register', registerBody({ node_id: id })));
      await socket.nextOfType('node_register_ack');
      await waitFor(async () => (await flushAdds()) === before + 1 && (await redis.scard(shard.dirty)) === 0);

      // The first heartbeat changes the status (registering -> ready): one flush. The 49 with
      // the same load that follow change nothing published: no flush.
      for (let i = 1; i <= 50; i++) socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: i })));
      await waitFor(async () => (await redis.hget(shard.node(id), 'hb_ts')) === '50');
      await waitFor(async () => (await redis.scard(shard.dirty)) === 0);
      expect(await flushAdds()).toBe(before + 2);

      socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 51 }, { running_jobs: 2 })));
      await waitFor(async () => (await flushAdds()) === before + 3);
      await waitFor(async () => (await redis.hget(shard.node(id), 'pub'))?.split('|')[1] === '2');
      await socket.close();
    } finally {
      await flusher.close();
    }
  });
});
