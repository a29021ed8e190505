import { Cluster } from 'ioredis';
import type { Logger } from './logger.ts';
import type { RedisClient } from './redis-client.ts';

/**
 * What Switchboard needs of its Redis (README "Faults and what Redis must guarantee"):
 * - persistence (AOF, or RDB snapshots): a Redis that restarts empty forgets accepted jobs,
 *   held slots and nodes (Switchboard recovers its own schedulers, not the data);
 * - `maxmemory-policy noeviction`: an evicted key is a lost job, node or slot counter; under
 *   noeviction a full Redis refuses writes (503) instead.
 * Checked once at start, with CONFIG where allowed (managed Redis often forbids it) and INFO
 * otherwise; what is off is said in one structured warning line. Never fails the start.
 */

export interface RedisGuarantees {
  /** `aof`, `rdb`, `aof+rdb`, `off`, or `unknown` (CONFIG not allowed and AOF off). */
  persistence: string;
  /** `noeviction`, another policy, or `unknown`. */
  maxmemoryPolicy: string;
  /** What is wrong, in words; empty when both hold. */
  problems: string[];
}

function infoField(info: string, field: string): string | undefined {
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return match?.[1]?.trim();
}

/** Reads one Redis server's persistence and eviction settings. */
export async function readGuarantees(redis: RedisClient): Promise<RedisGuarantees> {
  const [persistenceInfo, memoryInfo] = await Promise.all([redis.info('persistence'), redis.info('memory')]);
  const aof = infoField(persistenceInfo, 'aof_enabled') === '1';
  let save: string | undefined;
  try {
    const reply = await redis.config('GET', 'save');
    save = reply[1] ?? '';
  } catch {
    save = undefined; // CONFIG renamed or forbidden: RDB cannot be confirmed
  }
  const rdb = save !== undefined && save.trim() !== '';
  const persistence =
    aof && rdb ? 'aof+rdb' : aof ? 'aof' : rdb ? 'rdb' : save === undefined ? 'unknown' : 'off';
  const maxmemoryPolicy = infoField(memoryInfo, 'maxmemory_policy') ?? 'unknown';
  const problems: string[] = [];
  if (persistence === 'off')
    problems.push(
      'persistence is off (appendonly no, save ""): a restart empties Redis and loses accepted jobs, held slots and nodes',
    );
  else if (persistence === 'unknown')
    problems.push(
      'persistence cannot be confirmed (CONFIG not allowed and AOF off): make sure RDB or AOF is on',
    );
  if (maxmemoryPolicy !== 'noeviction')
    problems.push(
      `maxmemory-policy is ${maxmemoryPolicy}, not noeviction: under memory pressure Redis may evict jobs, nodes or slot counters`,
    );
  return { persistence, maxmemoryPolicy, problems };
}

/**
 * Checks every server (each master of a Cluster) and warns in one line when a guarantee is
 * missing. Resolves with the problems found (empty when none, or when Redis could not be read).
 */
export async function checkRedisGuarantees(redis: RedisClient, log: Logger): Promise<string[]> {
  try {
    const servers = redis instanceof Cluster ? redis.nodes('master') : [redis];
    const results = await Promise.all(servers.map((server) => readGuarantees(server)));
    const problems = [...new Set(results.flatMap((r) => r.problems))];
    if (problems.length > 0)
      log.warn(
        {
          persistence: [...new Set(results.map((r) => r.persistence))].join(','),
          maxmemory_policy: [...new Set(results.map((r) => r.maxmemoryPolicy))].join(','),
          problems,
        },
        'Redis does not guarantee what Switchboard needs (README "Faults and what Redis must guarantee"): ' +
          problems.join('; '),
      );
    return problems;
  } catch {
    return []; // Redis went away meanwhile: the reachability line says so
  }
}
