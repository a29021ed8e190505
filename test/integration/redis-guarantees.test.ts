import { Redis } from 'ioredis';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { checkRedisGuarantees, readGuarantees } from '../../shared/redis-guarantees.ts';

/**
 * Issue 11, deliverable 6: a service says at start, in one structured line, when its Redis
 * lacks persistence or evicts keys (README "Faults and what Redis must guarantee").
 */
function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('Redis guarantees checked at start', () => {
  const servers: RedisServerHandle[] = [];
  const clients: Redis[] = [];
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(servers.map((s) => s.destroy()));
  });
  async function client(args: string[]): Promise<Redis> {
    const server = await startRedisServer({ args });
    servers.push(server);
    const redis = new Redis(server.url);
    clients.push(redis);
    return redis;
  }

  it('persistence off and an evicting policy: one warning line naming both', async () => {
    const redis = await client(['--maxmemory-policy', 'allkeys-lru']);
    const { log, lines } = capture();
    const problems = await checkRedisGuarantees(redis, log);
    expect(problems).toHaveLength(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, persistence: 'off', maxmemory_policy: 'allkeys-lru' });
    expect(String(lines[0]!['msg'])).toContain('persistence is off');
    expect(String(lines[0]!['msg'])).toContain('maxmemory-policy is allkeys-lru, not noeviction');
  });

  it('AOF and noeviction: nothing said', async () => {
    const redis = await client(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']);
    const { log, lines } = capture();
    expect(await checkRedisGuarantees(redis, log)).toEqual([]);
    expect(lines).toEqual([]);
    expect(await readGuarantees(redis)).toMatchObject({ persistence: 'aof', maxmemoryPolicy: 'noeviction' });
  });

  it('CONFIG forbidden (a managed Redis): falls back to INFO, says persistence cannot be confirmed', async () => {
    const redis = await client(['--rename-command', 'CONFIG', '""', '--maxmemory-policy', 'noeviction']);
    const { problems, persistence } = await readGuarantees(redis);
    expect(persistence).toBe('unknown');
    expect(problems).toEqual([expect.stringContaining('persistence cannot be confirmed')]);
  });
});
