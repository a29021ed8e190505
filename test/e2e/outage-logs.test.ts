import { afterAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';

/**
 * Issue 11 defect 9: a Redis outage of running services wrote ~100 unstructured stderr lines,
 * `[ioredis] Unhandled error event` with stacks among them. Now each service says it in
 * structured lines: one when Redis goes, one when it is back.
 */
describe('a Redis outage, as the running services log it', () => {
  const services: LaunchedService[] = [];
  let redis: RedisServerHandle;
  afterAll(async () => {
    await Promise.all(services.map((s) => stopService(s, 0)));
    await redis?.destroy();
  });

  it('gateway, worker and selector: only JSON lines, no ioredis stack traces, one error line each', async () => {
    redis = await startRedisServer();
    const lines: string[] = [];
    const env = {
      REDIS_URL: redis.url,
      REDIS_CLUSTER_NODES: '',
      SB_AUTH: 'off',
      SB_PREFIX: uniquePrefix('outage'),
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      SB_REAPER_INTERVAL_MS: '500',
    };
    for (const name of ['gateway', 'worker', 'selector'])
      services.push(
        await launchService(name, `services/${name}/main.ts`, env, { echo: (l) => lines.push(l) }),
      );
    lines.length = 0;

    await redis.stop();
    await waitFor(() => lines.filter((l) => l.includes('cannot reach Redis')).length >= 3, {
      timeoutMs: 10_000,
    });
    await new Promise((r) => setTimeout(r, 2500)); // retries meanwhile
    await redis.restart();
    await waitFor(() => lines.filter((l) => l.includes('"msg":"reached Redis')).length >= 3, {
      timeoutMs: 20_000,
      message: `each service says Redis is back; got:\n${lines.join('\n')}`,
    });
    await new Promise((r) => setTimeout(r, 500));

    const notJson = lines.filter((l) => !l.replace(/^\[\w+\] /, '').startsWith('{'));
    expect(notJson).toEqual([]);
    expect(lines.filter((l) => l.includes('Unhandled error event'))).toEqual([]);
    for (const name of ['gateway', 'worker', 'selector']) {
      const errors = lines.filter((l) => l.startsWith(`[${name}]`) && /"level":(50|60)/.test(l));
      expect(errors.length, `${name}:\n${errors.join('\n')}`).toBe(1);
    }
  });
});
