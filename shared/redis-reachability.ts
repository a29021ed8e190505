import type { Logger } from './logger.ts';

/**
 * What a service says when it cannot reach Redis: one line naming the Redis (credentials
 * redacted), the error code and what to do — once per outage however many clients retry,
 * repeated at most every `repeatMs` while it lasts.
 */

export interface RedisTarget {
  url: string;
  clusterNodes: { host: string; port: number }[] | null;
}

/** `redis://user:***@host:6379/0`: the password, in the user part or a `password=` parameter, masked. */
export function redactRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(an unparseable URL)';
  }
  if (parsed.password) parsed.password = '***';
  for (const name of [...parsed.searchParams.keys()])
    if (/pass/i.test(name)) parsed.searchParams.set(name, '***');
  return parsed.href;
}

/** `redis://10.0.0.5:6379` (redacted) or the Cluster seeds `10.0.0.1:7000,10.0.0.2:7000`. */
export function redisAddress(target: RedisTarget): string {
  return target.clusterNodes
    ? target.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')
    : redactRedisUrl(target.url);
}

/** `Redis at redis://10.0.0.5:6379` or `Redis Cluster at 10.0.0.1:7000,10.0.0.2:7000`. */
export function describeRedis(target: RedisTarget): string {
  return `${target.clusterNodes ? 'Redis Cluster' : 'Redis'} at ${redisAddress(target)}`;
}

/** What ioredis says, where it gives no code, in a few words. */
const KNOWN_MESSAGES: [RegExp, string][] = [
  [/Connection is closed/i, 'connection closed'],
  [/Unknown RESP type|Protocol error/i, 'not a Redis reply'],
  [/timed? ?out/i, 'ETIMEDOUT'],
  [/None of startup nodes is available|Failed to refresh slots cache/i, 'no seed answered'],
];

/**
 * ECONNREFUSED, ENOTFOUND, ETIMEDOUT, WRONGPASS, NOAUTH, … or a few words (`connection
 * closed`, which is all a Redis Cluster client says of a refused seed).
 */
export function redisErrorCode(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown error';
  const last = (err as { lastNodeError?: unknown }).lastNodeError;
  if (last instanceof Error) return redisErrorCode(last);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code) return code;
  const word = /^([A-Z][A-Z_]{2,})\b/.exec(err.message)?.[1];
  if (word) return word;
  const known = KNOWN_MESSAGES.find(([pattern]) => pattern.test(err.message));
  if (known) return known[1];
  return err.message.slice(0, 80) || err.name;
}

const AUTH_CODES = new Set(['NOAUTH', 'WRONGPASS', 'NOPERM']);

/**
 * `cannot reach Redis at redis://10.0.0.5:6379 (ECONNREFUSED): start redis-server or set
 * REDIS_URL / REDIS_CLUSTER_NODES to a reachable Redis`
 */
export function unreachableMessage(target: RedisTarget, err: unknown): string {
  const code = redisErrorCode(err);
  const fix = AUTH_CODES.has(code)
    ? 'Redis refused the credentials: set the right user and password in REDIS_URL (redis://user:password@host:port)'
    : `${target.clusterNodes ? 'start the Redis Cluster' : 'start redis-server'} or set REDIS_URL / REDIS_CLUSTER_NODES to a reachable Redis`;
  return `cannot reach ${describeRedis(target)} (${code}): ${fix}`;
}

/**
 * The Redis outage of one service, whatever its number of clients: the first client to fail
 * logs the line, the others and every retry stay quiet (but for one repeat every `repeatMs`),
 * and once every client that failed is ready again one line says so.
 */
export class RedisReachability {
  private readonly down = new Set<string>();
  /** When the outage being reported began; null while none is. */
  private since: number | null = null;
  private lastLine = 0;

  constructor(
    private readonly target: RedisTarget,
    private readonly log: Logger,
    private readonly repeatMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** `client` could not connect, or lost its connection. */
  failed(client: string, err: unknown): void {
    this.down.add(client);
    const now = this.now();
    if (this.since !== null && now - this.lastLine < this.repeatMs) return;
    this.since ??= now;
    this.lastLine = now;
    this.log.error(
      {
        redis: redisAddress(this.target),
        code: redisErrorCode(err),
        down_s: Math.round((now - this.since) / 1000),
      },
      unreachableMessage(this.target, err),
    );
  }

  /** `client` is connected and ready. */
  ready(client: string): void {
    if (!this.down.delete(client) || this.down.size > 0 || this.since === null) return;
    const downS = Math.round((this.now() - this.since) / 1000);
    this.since = null;
    this.log.info(
      { redis: redisAddress(this.target), down_s: downS },
      `reached ${describeRedis(this.target)}`,
    );
  }
}
