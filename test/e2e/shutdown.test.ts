import { afterAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import { API_KEY, JOIN_TOKEN, NODE_TOKEN_SECRET } from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Issue 11, defect 9 ("a service sometimes ignored SIGTERM for 10 s"): SIGTERM is handled
 * promptly by every service whatever Redis does — it closes its servers, stops its workers and
 * exits 0 within SB_SHUTDOWN_TIMEOUT_MS (exit 1 means the deadline passed: something hung).
 * Each case stops or stalls Redis first, the state that made closing hang (QUIT and BullMQ's
 * close waiting for a Redis that does not answer, a request held on a stalled Redis).
 */
const SERVICES = ['gateway', 'worker', 'selector'] as const;
const SECRETS = { SB_JOIN_TOKEN: JOIN_TOKEN, SB_NODE_TOKEN_SECRET: NODE_TOKEN_SECRET, SB_API_KEY: API_KEY };

/** SIGCONT, if it still runs. */
function resume(server: RedisServerHandle): void {
  try {
    process.kill(server.pid, 'SIGCONT');
  } catch {
    // already gone
  }
}

describe('SIGTERM is handled promptly', () => {
  const servers: RedisServerHandle[] = [];
  const services: LaunchedService[] = [];
  afterAll(async () => {
    for (const s of servers) resume(s);
    await Promise.all(services.map((s) => stopService(s, 0)));
    await Promise.all(servers.map((s) => s.destroy()));
  });

  async function launch(service: (typeof SERVICES)[number]): Promise<[LaunchedService, RedisServerHandle]> {
    const redis = await startRedisServer();
    servers.push(redis);
    const launched = await launchService(service, `services/${service}/main.ts`, {
      REDIS_URL: redis.url,
      REDIS_CLUSTER_NODES: '',
      ...SECRETS,
      SB_PREFIX: uniquePrefix(),
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      SB_SHUTDOWN_TIMEOUT_MS: '6000',
      SB_REDIS_COMMAND_TIMEOUT_MS: '500',
    });
    services.push(launched);
    const base = `http://127.0.0.1:${launched.port}`;
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 15_000 });
    return [launched, redis];
  }

  /** SIGTERM; the exit code (0: every handler finished within the deadline). */
  async function term(service: LaunchedService): Promise<number | null> {
    service.proc.kill('SIGTERM');
    return service.exited;
  }

  it.each(SERVICES)('%s: Redis stopped, then SIGTERM → exits 0 within the deadline', async (name) => {
    const [service, redis] = await launch(name);
    if (name === 'gateway') {
      // a connected node socket too: it must be closed, not waited for
      const socket = await TestSocket.open(`ws://127.0.0.1:${service.port}/ws/node`, JOIN_TOKEN);
      socket.ws.on('error', () => undefined);
    }
    await redis.stop();
    await new Promise((r) => setTimeout(r, 300)); // the clients notice
    expect(await term(service), service.lastLines().join('\n')).toBe(0);
  });

  it.each(SERVICES)(
    '%s: Redis stalled (SIGSTOP), then SIGTERM → exits 0 within the deadline',
    async (name) => {
      const [service, redis] = await launch(name);
      const base = `http://127.0.0.1:${service.port}`;
      process.kill(redis.pid, 'SIGSTOP');
      try {
        // a request in flight on the stalled Redis while it stops
        const held = fetch(`${base}/readyz`).catch(() => undefined);
        expect(await term(service), service.lastLines().join('\n')).toBe(0);
        await held;
      } finally {
        process.kill(redis.pid, 'SIGCONT');
      }
    },
  );
});
