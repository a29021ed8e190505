import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { createLogger } from '../../shared/logger.ts';
import { HeartbeatConnection, lastReply, parseReply } from '../../shared/store/heartbeat-connection.ts';
import { encodeEvalsha } from '../../shared/store/script-command.ts';
import { waitFor } from '../support/redis.ts';

/**
 * The heartbeats' own Redis connection (shared/store/heartbeat-connection.ts) on its own
 * redis-server: replies as ioredis gives them (errors with Redis's message, so NOSCRIPT and the
 * 503 mapping work unchanged), a stall failed within the command timeout, a restart survived.
 */
const log = createLogger('test', 'silent');
const resp = (s: string) => Buffer.from(s.replaceAll('\n', '\r\n'));

describe('parseReply', () => {
  it('reads every reply however the bytes are split across reads', () => {
    const text = resp('*4\n:1\n$5\nready\n:0\n:-2\n-NOSCRIPT No matching script\n+OK\n$-1\n*0\n$0\n\n');
    const expected: unknown[] = [[1, 'ready', 0, -2], 'NOSCRIPT No matching script', 'OK', null, [], ''];
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 8 }), (cuts) => {
        // as the socket would deliver it: the unread rest carried over to the next chunk
        const got: unknown[] = [];
        let rest = Buffer.alloc(0);
        const bounds = [...cuts.sort((a, b) => a - b), text.length];
        let from = 0;
        for (const to of bounds) {
          const buf = Buffer.concat([rest, text.subarray(from, to)]);
          from = to;
          let at = 0;
          for (let end = parseReplyInto(buf, at, got); end >= 0; end = parseReplyInto(buf, at, got)) at = end;
          rest = Buffer.from(buf.subarray(at));
        }
        expect(rest.length).toBe(0);
        expect(got).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});

function parseReplyInto(buf: Buffer, at: number, into: unknown[]): number {
  const end = parseReply(buf, at);
  const value = lastReply();
  if (end >= 0) into.push(value instanceof Error ? value.message : value);
  return end;
}

describe('HeartbeatConnection', () => {
  let server: RedisServerHandle;
  let client: Redis;
  let conn: HeartbeatConnection;

  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis(server.url, { commandTimeout: 300, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    conn = HeartbeatConnection.beside(client, 'test-heartbeats', log)!;
    await waitFor(() => conn.ready, { timeoutMs: 5000 });
  });
  afterAll(async () => {
    try {
      process.kill(server.pid, 'SIGCONT');
    } catch {
      // not running
    }
    conn?.close();
    client?.disconnect();
    await server?.destroy();
  });

  const evalsha = (sha: string) => encodeEvalsha(sha, 0, []);

  it('answers as ioredis does: arrays, and Redis errors as rejections with their message', async () => {
    const sha = (await client.script('LOAD', 'return {1, "ready", 0, 1}')) as string;
    const replies = await Promise.all(Array.from({ length: 50 }, () => conn.send(evalsha(sha))));
    expect(replies).toEqual(Array.from({ length: 50 }, () => [1, 'ready', 0, 1]));
    expect(await client.evalsha(sha, 0)).toEqual([1, 'ready', 0, 1]);
    await expect(conn.send(evalsha('0'.repeat(40)))).rejects.toThrow(/^NOSCRIPT/);
    expect(conn.ready).toBe(true);
    expect(conn.pending).toBe(0);
  });

  it('a stall fails each command at its deadline; late replies are dropped, later ones match', async () => {
    const sha7 = (await client.script('LOAD', 'return 7')) as string;
    const sha9 = (await client.script('LOAD', 'return 9')) as string;
    process.kill(server.pid, 'SIGSTOP');
    const started = performance.now();
    const first = conn.send(evalsha(sha7));
    await new Promise((resolve) => setTimeout(resolve, 150));
    const second = conn.send(evalsha(sha7));
    await expect(first).rejects.toThrow('Command timed out');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(conn.pending).toBe(2); // the first's reply is still owed
    process.kill(server.pid, 'SIGCONT');
    // the second: answered or timed out, depending on when Redis resumes; never the wrong reply
    await second.then(
      (v) => expect(v).toBe(7),
      (err: Error) => expect(err.message).toBe('Command timed out'),
    );
    await waitFor(() => conn.pending === 0, { timeoutMs: 5000 });
    expect(conn.ready).toBe(true);
    expect(await conn.send(evalsha(sha9))).toBe(9);
  });

  it('a Redis restart: commands fail as closed, then it is ready again (scripts must be loaded anew)', async () => {
    const sha = (await client.script('LOAD', 'return 8')) as string;
    const inFlight = conn.send(encodeEvalsha(sha, 0, []));
    await inFlight;
    await client.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
    await waitFor(() => !conn.ready, { timeoutMs: 5000 });
    await expect(conn.send(evalsha(sha))).rejects.toThrow('Connection is closed.');
    await server.restart();
    await waitFor(() => conn.ready, { timeoutMs: 10_000 });
    await expect(conn.send(evalsha(sha))).rejects.toThrow(/^NOSCRIPT/);
  });
});
