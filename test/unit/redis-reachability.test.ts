import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  redactRedisUrl,
  redisErrorCode,
  RedisReachability,
  unreachableMessage,
  type RedisTarget,
} from '../../shared/redis-reachability.ts';

const standalone = (url: string): RedisTarget => ({ url, clusterNodes: null });
/** What Node's net module raises for a closed port. */
const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6379'), { code: 'ECONNREFUSED', errno: -111 });

/** A real pino logger writing into an array. */
function capture() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as never) });
  return { log, lines };
}

describe('redis reachability: the one line', () => {
  it('names the URL, the code and the fix', () => {
    expect(unreachableMessage(standalone('redis://10.0.0.5:6379'), refused())).toBe(
      'cannot reach Redis at redis://10.0.0.5:6379 (ECONNREFUSED): start redis-server or set REDIS_URL / REDIS_CLUSTER_NODES to a reachable Redis',
    );
    const cluster = {
      url: 'redis://127.0.0.1:6379',
      clusterNodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'h', port: 7001 },
      ],
    };
    expect(unreachableMessage(cluster, new Error('Connection is closed.'))).toBe(
      'cannot reach Redis Cluster at 10.0.0.1:7000,h:7001 (connection closed): start the Redis Cluster or set REDIS_URL / REDIS_CLUSTER_NODES to a reachable Redis',
    );
    expect(
      unreachableMessage(
        standalone('redis://:pw@h:1'),
        new Error('WRONGPASS invalid username-password pair'),
      ),
    ).toBe(
      'cannot reach Redis at redis://:***@h:1 (WRONGPASS): Redis refused the credentials: set the right user and password in REDIS_URL (redis://user:password@host:port)',
    );
  });

  it('never shows a password', () => {
    expect(redactRedisUrl('redis://:s3cret@10.0.0.5:6379')).toBe('redis://:***@10.0.0.5:6379');
    expect(redactRedisUrl('rediss://app:s3cret@redis.internal:6380/2')).toBe(
      'rediss://app:***@redis.internal:6380/2',
    );
    expect(redactRedisUrl('redis://h:6379/0?password=s3cret&db=1')).toBe(
      'redis://h:6379/0?password=***&db=1',
    );
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(unreachableMessage(standalone('redis://u:s3cret@h:1'), refused())).not.toContain('s3cret');
  });

  it('takes the code from the error, a Cluster error’s last node error, or its words', () => {
    expect(
      redisErrorCode(Object.assign(new Error('getaddrinfo ENOTFOUND nohost'), { code: 'ENOTFOUND' })),
    ).toBe('ENOTFOUND');
    const clusterError = Object.assign(new Error('Failed to refresh slots cache.'), {
      lastNodeError: refused(),
    });
    expect(redisErrorCode(clusterError)).toBe('ECONNREFUSED');
    expect(redisErrorCode(new Error('Failed to refresh slots cache.'))).toBe('no seed answered');
    expect(redisErrorCode(new Error('NOAUTH Authentication required.'))).toBe('NOAUTH');
    expect(redisErrorCode(new Error('Unknown RESP type 72 "H". Please report this.'))).toBe(
      'not a Redis reply',
    );
    expect(redisErrorCode('?')).toBe('unknown error');
  });
});

describe('RedisReachability: once per outage, whatever the clients and retries', () => {
  it('one line for many clients retrying, one repeat per interval, one line when all are back', () => {
    const { log, lines } = capture();
    let now = 1_000_000;
    const reach = new RedisReachability(standalone('redis://u:pw@10.0.0.5:6379'), log, 30_000, () => now);
    for (let retry = 0; retry < 10; retry++) {
      for (const client of ['gateway', 'gateway-queues', 'gateway-feed']) reach.failed(client, refused());
      now += 2_000;
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 50,
      redis: 'redis://u:***@10.0.0.5:6379',
      code: 'ECONNREFUSED',
      msg: 'cannot reach Redis at redis://u:***@10.0.0.5:6379 (ECONNREFUSED): start redis-server or set REDIS_URL / REDIS_CLUSTER_NODES to a reachable Redis',
    });

    now += 10_000; // 30 s since the line
    reach.failed('gateway', refused());
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 50, down_s: 30, msg: lines[0]!.msg });

    reach.ready('gateway');
    reach.ready('gateway-queues');
    expect(lines).toHaveLength(2); // gateway-feed is still down
    reach.ready('gateway-feed');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ level: 30, msg: 'reached Redis at redis://u:***@10.0.0.5:6379' });

    // the next outage is reported at once
    now += 1_000;
    reach.failed('gateway-feed', refused());
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatchObject({ level: 50, down_s: 0 });
  });

  it('says nothing while Redis is reachable', () => {
    const { log, lines } = capture();
    const reach = new RedisReachability(standalone('redis://127.0.0.1:6379'), log);
    reach.ready('a');
    reach.ready('b');
    expect(lines).toEqual([]);
  });
});
