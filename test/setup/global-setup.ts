/**
 * Vitest globalSetup (root config only, so it runs ONCE per `vitest` invocation, in the main
 * process): starts one standalone redis-server and one 3-master Redis Cluster, hands their
 * addresses to every project through `provide`, and stops them at the end.
 *
 * - Tests read them with `redisUrl()` / `clusterNodes()` from test/support/redis.ts.
 * - TEST_REDIS_URL / TEST_REDIS_CLUSTER_NODES point at already running servers instead.
 * - When only the `unit` project is selected (`vitest run --project unit`), nothing is started.
 */
import type { TestProject } from 'vitest/node';
import { startRedisCluster, type RedisClusterHandle } from '../../scripts/lib/redis-cluster-process.ts';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `redis://127.0.0.1:<port>` of the shared standalone server. */
    redisUrl: string;
    /** Cluster seeds, `"127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"` (REDIS_CLUSTER_NODES format). */
    redisClusterNodes: string;
  }
}

/** Projects whose tests never touch Redis. */
const REDIS_FREE_PROJECTS = new Set(['unit']);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const selected = project.vitest.projects.map((p) => p.name);
  if (selected.length > 0 && selected.every((name) => REDIS_FREE_PROJECTS.has(name))) {
    return async () => {};
  }

  const envUrl = process.env['TEST_REDIS_URL'];
  const envCluster = process.env['TEST_REDIS_CLUSTER_NODES'];
  const started = await Promise.allSettled([
    envUrl ? Promise.resolve(null) : startRedisServer(),
    envCluster ? Promise.resolve(null) : startRedisCluster({ masters: 3 }),
  ]);
  const [standaloneRes, clusterRes] = started;
  const standalone: RedisServerHandle | null =
    standaloneRes.status === 'fulfilled' ? standaloneRes.value : null;
  const cluster: RedisClusterHandle | null = clusterRes.status === 'fulfilled' ? clusterRes.value : null;

  const teardown = async (): Promise<void> => {
    await Promise.all([standalone?.destroy(), cluster?.stop()]);
  };

  const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await teardown();
    throw failure.reason;
  }

  project.provide('redisUrl', envUrl ?? standalone?.url ?? '');
  project.provide('redisClusterNodes', envCluster ?? cluster?.seeds ?? '');
  return teardown;
}
