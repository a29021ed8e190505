import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { testConfig } from '../support/service-harness.ts';

/** registerNode's proof check, revokeNode and releaseConnection, against a real Redis. */
describe('credential scripts', () => {
  let redis: RedisClient;
  let keys: KeyBuilder;
  let n = 0;
  let id = '';
  const k = () => keys.forNode(id);

  beforeAll(async () => {
    const config = testConfig(uniquePrefix(), { redisUrl: redisUrl() });
    keys = new KeyBuilder(config.prefix, config.shards);
    redis = createRedisClient(config, createLogger('test', 'silent'), { name: 'test', mode: 'fail-fast' });
    await waitUntilReady(redis);
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(() => {
    id = `cred-${++n}`;
  });

  const register = (proof: '' | 'offline' | 'refuse') =>
    redis.registerNode(
      k().node(id),
      k().live,
      k().offline,
      k().dirty,
      k().caps,
      k().capRefs,
      id,
      Date.now(),
      1,
      4,
      'd1',
      '{}',
      'd2',
      '{}',
      'd3',
      '{}',
      0,
      proof,
    );
  const offline = () =>
    redis.markOffline(k().node(id), k().live, k().offline, k().dirty, id, '', Date.now(), '');
  const revoke = (claim: 'blocked' | 'open') =>
    redis.revokeNode(
      k().node(id),
      k().tokens,
      k().assignments,
      k().live,
      k().offline,
      k().dirty,
      id,
      claim,
      Date.now(),
      100,
    );

  it('join token, policy offline: a new id yes, a live one no (nothing written), an offline one yes', async () => {
    expect((await register('offline'))[0]).toBe(1);
    expect(await register('offline')).toEqual([-2, 0, 0, 0]);
    expect(await redis.hget(k().node(id), 'epoch')).toBe('1');
    await offline();
    expect((await register('offline'))[0]).toBe(2);
    // the node's own proof always may
    expect((await register(''))[0]).toBe(3);
  });

  it('join token, policy refuse: a new id only, a known one after a reset (once)', async () => {
    expect((await register('refuse'))[0]).toBe(1);
    await offline();
    expect((await register('refuse'))[0]).toBe(-2);
    await revoke('open');
    expect((await register('refuse'))[0]).toBe(2);
    expect(await redis.hget(k().node(id), 'claim')).toBeNull();
    await offline();
    expect((await register('refuse'))[0]).toBe(-2);
  });

  it('a handed-over socket (conn gone) frees the id under offline, for its epoch only', async () => {
    const [epoch] = await register('');
    expect(await redis.hexists(k().node(id), 'conn')).toBe(0); // only `gone` is ever stored
    expect(await redis.releaseConnection(k().node(id), epoch + 1)).toBe(0);
    expect((await register('offline'))[0]).toBe(-2);
    expect(await redis.releaseConnection(k().node(id), epoch)).toBe(1);
    expect(await redis.hget(k().node(id), 'conn')).toBe('gone');
    expect((await register('offline'))[0]).toBe(epoch + 1);
    expect(await redis.hexists(k().node(id), 'conn')).toBe(0); // the new socket holds it
  });

  it('revoke: generation + 1, offline, claim blocked, a control entry on the feed; the node own proof clears it', async () => {
    await register('');
    expect(await revoke('blocked')).toEqual([1, 1, expect.any(Number)]);
    expect(await redis.hmget(k().node(id), 'status', 'claim')).toEqual(['offline', 'blocked']);
    expect(await redis.zscore(k().live, id)).toBeNull();
    expect(await redis.hget(k().tokens, id)).toBe('1');
    const [last] = await redis.xrevrange(k().assignments, '+', '-', 'COUNT', 1);
    expect(last![1]).toEqual(['node', id, 'control', 'revoke']);
    expect((await register('offline'))[0]).toBe(-2);
    expect((await register(''))[0]).toBe(2);
    expect(await redis.hget(k().node(id), 'claim')).toBeNull();
  });

  it('revoking an unknown id moves its generation on and creates no node record', async () => {
    expect(await revoke('blocked')).toEqual([1, 0, 0]);
    expect(await redis.exists(k().node(id))).toBe(0);
    expect(await revoke('blocked')).toEqual([2, 0, 0]);
  });
});
