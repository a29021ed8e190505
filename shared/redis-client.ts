import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { defineScripts } from './lua-scripts.ts';

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /** Name shown in CLIENT LIST and logs. */
  name: string;
  /**
   * `fail-fast` (request paths): no offline queue, a command fails at once while Redis is
   * unreachable, so callers answer 503 instead of piling up work.
   * `blocking` (BullMQ workers, stream readers): retries forever, as BullMQ requires.
   */
  mode: 'fail-fast' | 'blocking';
}

/**
 * The one Redis client factory: standalone or Cluster from config, error listener always
 * attached, reconnect on READONLY/LOADING, Switchboard's Lua scripts defined.
 */
export function createRedisClient(config: Config, logger: Logger, options: RedisClientOptions): RedisClient {
  const log = logger.child({ component: 'redis', client: options.name });
  const failFast = options.mode === 'fail-fast';
  const common: RedisOptions = {
    connectionName: `sb:${options.name}`,
    enableOfflineQueue: !failFast,
    maxRetriesPerRequest: failFast ? 1 : null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => /READONLY|LOADING/.test(err.message),
  };
  const client: RedisClient = config.redis.clusterNodes
    ? new Cluster(config.redis.clusterNodes, {
        redisOptions: common,
        enableOfflineQueue: !failFast,
        clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        slotsRefreshTimeout: 2000,
      })
    : new Redis(config.redis.url, common);
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) log.warn({ err: err.message }, 'redis error');
    down = true;
  });
  client.on('ready', () => {
    if (down) log.info('redis reachable again');
    down = false;
  });
  defineScripts(client);
  return client;
}

/** Resolves once the client is ready (or rejects after `timeoutMs`). */
export async function waitUntilReady(client: RedisClient, timeoutMs = 30000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}
