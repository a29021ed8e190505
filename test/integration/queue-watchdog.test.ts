import { createServer, Socket, type Server } from 'node:net';
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.ts';
import { Registry } from '../../shared/metrics.ts';
import { QueueWatchdog, queueStallCounter } from '../../shared/queue-watchdog.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';

/**
 * A TCP proxy to Redis that can freeze: it keeps its connections open and forwards nothing any
 * more — a Redis Cluster master that died under a blocking connection, as the worker sees it.
 */
async function freezingProxy(target: URL): Promise<{ port: number; freeze(): void; close(): Promise<void> }> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    upstream.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d) => void (frozen || upstream.write(d)));
    upstream.on('data', (d) => void (frozen || client.write(d)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    freeze: () => (frozen = true),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** shared/queue-watchdog.ts on a real Redis and real BullMQ workers. */
describe('queue watchdog (a BullMQ worker stuck on a dead connection)', () => {
  const url = new URL(redisUrl());
  const direct = { host: url.hostname, port: Number(url.port) };
  const prefix = `{${uniquePrefix('qw')}}`;
  const log = createLogger('watchdog-test', 'silent');
  let queue: Queue;
  let proxy: Awaited<ReturnType<typeof freezingProxy>>;
  const workers: Worker[] = [];

  beforeAll(async () => {
    queue = new Queue('watched', { connection: direct, prefix });
    proxy = await freezingProxy(url);
  });
  afterAll(async () => {
    await proxy.close();
    await Promise.allSettled(workers.map((w) => w.close(true)));
    await queue.close();
  });

  it('replaces a worker whose connection froze, counts it, and the waiting job runs', async () => {
    const done: string[] = [];
    const make = (connection: { host: string; port: number }) => {
      const w = new Worker('watched', (job) => Promise.resolve(void done.push(job.name)), {
        connection: { ...connection, maxRetriesPerRequest: null },
        prefix,
      });
      w.on('error', () => undefined);
      workers.push(w);
      return w;
    };
    const registry = new Registry();
    const stalls = queueStallCounter(registry);
    let created = 0;
    const dog = new QueueWatchdog(
      queue,
      () => (created++ === 0 ? make({ host: '127.0.0.1', port: proxy.port }) : make(direct)),
      stalls,
      log,
      { checkEveryMs: 100, stallMs: 1500 },
    );
    dog.start();
    try {
      await queue.add('before', {});
      await waitFor(() => done.includes('before'), { timeoutMs: 10_000 });
      expect(await dog.check()).toBe(false); // nothing waits

      proxy.freeze();
      await queue.add('after', {});
      await new Promise((r) => setTimeout(r, 1000));
      expect(done).not.toContain('after'); // the stuck worker takes nothing
      await waitFor(() => done.includes('after'), { timeoutMs: 15_000 });
      expect(created).toBe(2);
      expect((await stalls.get()).values).toEqual([{ value: 1, labels: { queue: 'watched' } }]);
    } finally {
      dog.stop();
    }
  });

  it('leaves a busy worker alone: jobs wait behind long ones, but it keeps starting jobs', async () => {
    const busy: Worker[] = [];
    const registry = new Registry();
    const stalls = queueStallCounter(registry);
    const slowQueue = new Queue('busy', { connection: direct, prefix });
    const dog = new QueueWatchdog(
      slowQueue,
      () => {
        const w = new Worker('busy', () => new Promise((r) => setTimeout(r, 400)), {
          connection: { ...direct, maxRetriesPerRequest: null },
          prefix,
          concurrency: 1,
        });
        w.on('error', () => undefined);
        busy.push(w);
        workers.push(w);
        return w;
      },
      stalls,
      log,
      { checkEveryMs: 100, stallMs: 1000 },
    );
    dog.start();
    try {
      await slowQueue.addBulk(Array.from({ length: 8 }, (_, i) => ({ name: `slow-${i}`, data: {} })));
      // the last job waits ~3 s (> stallMs), yet the worker starts one every 400 ms
      await waitFor(async () => ((await slowQueue.getJobCounts('completed'))['completed'] ?? 0) >= 8, {
        timeoutMs: 15_000,
      });
      expect(busy).toHaveLength(1);
      expect((await stalls.get()).values).toEqual([]);
    } finally {
      dog.stop();
      await slowQueue.close();
    }
  });
});
