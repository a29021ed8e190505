import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { registerBody } from '../support/node-fixtures.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import {
  JOIN_TOKEN,
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';

/**
 * Issue 11, defect 6: a stalled Redis (SIGSTOP: connections stay open, nothing answers) is
 * failed fast. Requests answer 503 SCHEDULER_DEPENDENCY_DOWN and every /readyz 503 WHILE the
 * stall lasts (each answer is awaited before the stall is lifted), instead of hanging for its
 * whole length and then answering 200. The worker's /readyz does not hang during an outage
 * either. Its own Redis server: the stall must not touch other tests.
 */
describe('a stalled Redis is failed fast', () => {
  let server: RedisServerHandle;
  let gateway: TestGateway;
  let selector: TestSelector;
  let worker: TestWorker;
  const env = { SB_REDIS_COMMAND_TIMEOUT_MS: '500' };

  beforeAll(async () => {
    server = await startRedisServer();
    const prefix = uniquePrefix('stall');
    const target = { redisUrl: server.url };
    [gateway, selector, worker] = await Promise.all([
      startTestGateway(prefix, target, env),
      startTestSelector(prefix, target, env),
      startTestWorker(prefix, target, env),
    ]);
  });
  afterAll(async () => {
    try {
      process.kill(server.pid, 'SIGCONT');
    } catch {
      // not running
    }
    await Promise.all([gateway?.close(), selector?.close(), worker?.close()]);
    await server?.destroy();
  });

  const readyz = async (base: string) => (await fetch(`${base}/readyz`)).status;
  const workerBase = () => `http://127.0.0.1:${worker.port}`;
  const register = (id: string) =>
    fetch(`${gateway.http}/v1/nodes/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${JOIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(registerBody({ node_id: id })),
    });

  it('during a stall: 503 for requests and /readyz, answered before the stall ends; then recovers', async () => {
    await waitFor(async () => (await readyz(workerBase())) === 200, { timeoutMs: 10_000 });
    expect(await readyz(gateway.http)).toBe(200);
    expect(await readyz(selector.url)).toBe(200);

    process.kill(server.pid, 'SIGSTOP');
    try {
      const job = await selector.api('/v1/jobs/stalled-job');
      expect(job.status).toBe(503);
      expect(await job.json()).toMatchObject({ error: { code: 'SCHEDULER_DEPENDENCY_DOWN' } });
      const reg = await register('stall-1');
      expect(reg.status).toBe(503);
      expect(reg.headers.get('retry-after')).toBe('1');
      expect(await reg.json()).toMatchObject({ error: { code: 'SCHEDULER_DEPENDENCY_DOWN' } });
      expect(await readyz(gateway.http)).toBe(503);
      expect(await readyz(selector.url)).toBe(503);
      expect(await readyz(workerBase())).toBe(503);
    } finally {
      process.kill(server.pid, 'SIGCONT');
    }

    await waitFor(async () => (await register('stall-2')).status === 201, { timeoutMs: 10_000 });
    for (const base of [gateway.http, selector.url, workerBase()])
      await waitFor(async () => (await readyz(base)) === 200, { timeoutMs: 10_000 });
    expect((await selector.api('/v1/jobs/stalled-job')).status).toBe(404);
  });

  it('during an outage the worker’s /readyz answers 503 at once, and 200 once Redis is back', async () => {
    await server.stop();
    try {
      expect(await readyz(workerBase())).toBe(503);
      expect(await readyz(gateway.http)).toBe(503);
    } finally {
      await server.restart();
    }
    await waitFor(async () => (await readyz(workerBase())) === 200, { timeoutMs: 15_000 });
  });

  it('Redis out of memory (maxmemory, noeviction): a write answers 503 naming it, not 500', async () => {
    const admin = new Redis(server.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      const reg = await register('oom-1');
      expect(reg.status).toBe(503);
      const body = (await reg.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('SCHEDULER_DEPENDENCY_DOWN');
      expect(body.error.message).toContain('out of memory');
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      await admin.quit();
    }
    expect((await register('oom-2')).status).toBe(201);
  });
});
