import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { defineScripts } from './lua-scripts.ts';
import { RedisReachability, type RedisTarget } from './redis-reachability.ts';

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
  /**
   * Where connection failures are reported. Give every client of a service the same one, so an
   * outage is one log line, not one per client and retry. Default: one for this client alone.
   */
  reachability?: RedisReachability;
  /**
   * ioredis' auto-pipelining: the commands issued in one turn of the event loop leave in one
   * socket write. For a request client under concurrency (the gateway's: a registration storm
   * issues thousands of small commands), where a write per command costs a system call each.
   */
  autoPipelining?: boolean;
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
    // request paths fail fast during a stall too (blocking clients wait: BullMQ blocks on purpose)
    ...(failFast && config.env.SB_REDIS_COMMAND_TIMEOUT_MS > 0
      ? { commandTimeout: config.env.SB_REDIS_COMMAND_TIMEOUT_MS }
      : {}),
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => /READONLY|LOADING/.test(err.message),
    ...(options.autoPipelining ? { enableAutoPipelining: true } : {}),
  };
  const client: RedisClient = config.redis.clusterNodes
    ? new Cluster(config.redis.clusterNodes, {
        redisOptions: common,
        ...(options.autoPipelining ? { enableAutoPipelining: true } : {}),
        enableOfflineQueue: !failFast,
        clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        slotsRefreshTimeout: 2000,
      })
    : new Redis(config.redis.url, common);
  const reachability = options.reachability ?? new RedisReachability(config.redis, log);
  client.on('error', (err: Error) => reachability.failed(options.name, err));
  client.on('ready', () => reachability.ready(options.name));
  defineScripts(client);
  return client;
}

/**
 * A plain connection for sharded pub/sub (SSUBSCRIBE), to the standalone server or to one Cluster
 * master (`node` = its `host:port`): same options as createRedisClient's `blocking` clients, but it
 * never resubscribes by itself (autoResubscribe off) — its owner subscribes on every `ready` and
 * so knows when a subscription is live again (shared/store/shard-subscriber.ts).
 */
export function createSubscriberConnection(
  config: Config,
  logger: Logger,
  options: { name: string; node?: string; reachability?: RedisReachability },
): Redis {
  const log = logger.child({ component: 'redis', client: options.name });
  const common: RedisOptions = {
    connectionName: `sb:${options.name}`,
    enableOfflineQueue: false,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    autoResubscribe: false,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  };
  let client: Redis;
  if (options.node === undefined) {
    client = new Redis(config.redis.url, common);
  } else {
    const colon = options.node.lastIndexOf(':');
    client = new Redis({
      ...common,
      host: options.node.slice(0, colon),
      port: Number(options.node.slice(colon + 1)),
    });
  }
  const reachability = options.reachability ?? new RedisReachability(config.redis, log);
  client.on('error', (err: Error) => reachability.failed(options.name, err));
  client.on('ready', () => reachability.ready(options.name));
  return client;
}

/**
 * Resolves once every client is ready, however long that takes: a service started before its
 * Redis waits for it (its RedisReachability says what it waits for). Rejects only if a client
 * is closed meanwhile.
 */
export async function waitForRedis(clients: RedisClient[]): Promise<void> {
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve, reject) => {
          if (client.status === 'ready') return resolve();
          const onReady = () => {
            client.off('end', onEnd);
            resolve();
          };
          const onEnd = () => {
            client.off('ready', onReady);
            reject(new Error('Redis client closed while waiting for Redis'));
          };
          client.once('ready', onReady);
          client.once('end', onEnd);
        }),
    ),
  );
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

/**
 * One attempt to reach Redis and PING it within `timeoutMs`, nothing retried or logged:
 * resolves null when it answered, else with the error (for unreachableMessage).
 */
export async function probeRedis(target: RedisTarget, timeoutMs: number): Promise<Error | null> {
  const options: RedisOptions = {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  };
  const client: RedisClient = target.clusterNodes
    ? new Cluster(target.clusterNodes, {
        lazyConnect: true,
        enableOfflineQueue: false,
        clusterRetryStrategy: () => null,
        redisOptions: options,
      })
    : new Redis(target.url, options);
  let lastError: Error | null = null;
  client.on('error', (err: Error) => (lastError = err));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
          timeoutMs,
        );
      }),
    ]);
    return null;
  } catch (err) {
    // the 'error' event carries the cause (ECONNREFUSED, a Cluster seed's error); the rejection may not
    return lastError ?? (err instanceof Error ? err : new Error(String(err)));
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}
