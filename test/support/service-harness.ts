import { Cluster, Redis } from 'ioredis';
import { loadConfig, type Config } from '../../shared/config.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { issueNodeToken } from '../../shared/node-token.ts';
import { createLogger } from '../../shared/logger.ts';
import { startGateway, type Gateway } from '../../services/gateway/main.ts';
import { startWorker, type WorkerService } from '../../services/worker/main.ts';
import { startSelector, type SelectorService } from '../../services/selector/main.ts';

export const JOIN_TOKEN = 'join-token-for-tests';
export const NODE_TOKEN_SECRET = 'node-token-secret-for-tests';
export const API_KEY = 'api-key-for-tests';
export const ADMIN_API_KEY = 'admin-key-for-tests';

/** A node token as a gateway of the test config issues it (generation 0: never revoked). */
export function nodeToken(nodeId: string, options: { generation?: number; expiresAt?: number } = {}): string {
  return issueNodeToken(NODE_TOKEN_SECRET, {
    nodeId,
    generation: options.generation ?? 0,
    expiresAt: options.expiresAt ?? Date.now() + 3_600_000,
  });
}

export interface RedisTarget {
  redisUrl?: string;
  clusterNodes?: string;
}

export function testConfig(prefix: string, target: RedisTarget, env: Record<string, string> = {}): Config {
  return loadConfig({
    ...(target.clusterNodes ? { REDIS_CLUSTER_NODES: target.clusterNodes } : { REDIS_URL: target.redisUrl }),
    SB_PREFIX: prefix,
    PORT: '0',
    HOST: '127.0.0.1',
    SB_JOIN_TOKEN: JOIN_TOKEN,
    SB_NODE_TOKEN_SECRET: NODE_TOKEN_SECRET,
    SB_API_KEY: API_KEY,
    SB_ADMIN_API_KEYS: ADMIN_API_KEY,
    SB_FLUSH_DELAY_MS: '0',
    LOG_LEVEL: 'silent',
    ...env,
  });
}

/** A plain client on the same Redis as a config, for inspecting what the services wrote. */
export function inspectClient(config: Config): Redis | Cluster {
  return config.redis.clusterNodes ? new Cluster(config.redis.clusterNodes) : new Redis(config.redis.url);
}

export interface TestGateway extends Gateway {
  config: Config;
  keys: KeyBuilder;
  http: string;
  ws: string;
}

/** A real gateway (the same composition as `npm run start:gateway`) on a free port. */
export async function startTestGateway(
  prefix: string,
  target: RedisTarget,
  env: Record<string, string> = {},
): Promise<TestGateway> {
  const config = testConfig(prefix, target, env);
  const gateway = await startGateway(config, createLogger('gateway-test', 'silent'));
  return {
    ...gateway,
    config,
    keys: new KeyBuilder(config.prefix, config.shards),
    http: `http://127.0.0.1:${gateway.port}`,
    ws: `ws://127.0.0.1:${gateway.port}/ws/node`,
  };
}

export interface TestWorker extends WorkerService {
  config: Config;
  keys: KeyBuilder;
  metrics: string;
}

/** A real worker (the same composition as `npm run start:worker`) with its ops server on a free port. */
export async function startTestWorker(
  prefix: string,
  target: RedisTarget,
  env: Record<string, string> = {},
): Promise<TestWorker> {
  const config = testConfig(prefix, target, env);
  const worker = await startWorker(config, createLogger('worker-test', 'silent'));
  return {
    ...worker,
    config,
    keys: new KeyBuilder(config.prefix, config.shards),
    metrics: `http://127.0.0.1:${worker.port}/metrics`,
  };
}

/**
 * Sum of the samples of metric `name` whose labels include every pair of `labels`, from a
 * Prometheus text exposition (0 when there is none).
 */
export async function scrape(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name} `) || line.startsWith(`${name}{`))) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export interface TestSelector extends SelectorService {
  url: string;
  /** fetch with the admin API key (which may do what a client key does, for any tenant) */
  api(path: string, init?: RequestInit): Promise<Response>;
}

/** A real selector (the same composition as `npm run start:selector`) on a free port. */
export async function startTestSelector(
  prefix: string,
  target: RedisTarget,
  env: Record<string, string> = {},
): Promise<TestSelector> {
  const config = testConfig(prefix, target, env);
  const selector = await startSelector(config, createLogger('selector-test', 'silent'));
  const url = `http://127.0.0.1:${selector.port}`;
  return {
    ...selector,
    url,
    api: (path, init = {}) =>
      fetch(`${url}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${ADMIN_API_KEY}`,
          'content-type': 'application/json',
          ...(init.headers ?? {}),
        },
      }),
  };
}
