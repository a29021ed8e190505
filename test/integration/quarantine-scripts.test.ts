import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { testConfig } from '../support/service-harness.ts';

/** recordNodeFault and clearNodeFaults against a real Redis: counting, window, back-off, cap. */
describe('quarantine scripts', () => {
  let redis: RedisClient;
  let keys: KeyBuilder;
  let n = 0;
  let id = '';
  const k = () => keys.forNode(id);
  const WINDOW = 10_000;
  const BASE = 1_000;
  const MAX = 3_000;

  beforeAll(async () => {
    const config = testConfig(uniquePrefix(), { redisUrl: redisUrl() });
    keys = new KeyBuilder(config.prefix, config.shards);
    redis = createRedisClient(config, createLogger('test', 'silent'), { name: 'test', mode: 'fail-fast' });
    await waitUntilReady(redis);
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(async () => {
    id = `q-${++n}`;
    await redis.hset(k().node(id), { id, status: 'ready' });
  });

  const fault = (now: number, reason = 'job_failed') =>
    redis.recordNodeFault(k().node(id), k().dirty, id, now, WINDOW, 3, BASE, MAX, reason);

  it('the third fault within the window quarantines: until = now + base, reason kept, node dirty', async () => {
    const t = 1_000_000;
    expect(await fault(t)).toEqual([0, 0, 0]);
    expect(await fault(t + 100)).toEqual([0, 0, 0]);
    expect(await redis.sismember(k().dirty, id)).toBe(0);
    const [code, until] = await fault(t + 200, 'ack_timeout');
    expect([code, until]).toEqual([1, t + 200 + BASE]);
    expect(await redis.hmget(k().node(id), 'q_until', 'q_reason', 'q_level', 'q_strikes')).toEqual([
      String(t + 1200),
      'ack_timeout',
      '1',
      '0',
    ]);
    expect(await redis.sismember(k().dirty, id)).toBe(1);
    // while quarantined, faults are not counted
    expect(await fault(t + 300)).toEqual([2, t + 1200, 0]);
    expect(await redis.hget(k().node(id), 'q_strikes')).toBe('0');
  });

  it('faults spread wider than the window do not add up', async () => {
    const t = 2_000_000;
    await fault(t);
    await fault(t + 5_000);
    expect((await fault(t + WINDOW + 1))[0]).toBe(0); // the window started again at this one
    expect((await fault(t + WINDOW + 2))[0]).toBe(0);
    expect((await fault(t + WINDOW + 3))[0]).toBe(1);
  });

  it('the back-off doubles with each quarantine in a row, up to the cap; a success starts it over', async () => {
    let t = 3_000_000;
    const quarantine = async () => {
      await fault(t);
      await fault(t + 1);
      const [code, until] = await fault(t + 2);
      expect(code).toBe(1);
      const backoff = until - (t + 2);
      t = until + 1;
      return backoff;
    };
    expect(await quarantine()).toBe(1_000);
    expect(await quarantine()).toBe(2_000);
    expect(await quarantine()).toBe(3_000); // 4,000 capped
    expect(await redis.clearNodeFaults(k().node(id))).toBe(1);
    expect(await redis.clearNodeFaults(k().node(id))).toBe(0); // nothing left: nothing written
    expect(await quarantine()).toBe(1_000);
  });

  it('a success clears the count but not a quarantine in progress', async () => {
    const t = 4_000_000;
    await fault(t);
    await fault(t + 1);
    await redis.clearNodeFaults(k().node(id));
    expect((await fault(t + 2))[0]).toBe(0);
    await fault(t + 3);
    const [, until] = await fault(t + 4);
    await redis.clearNodeFaults(k().node(id));
    expect(await redis.hget(k().node(id), 'q_until')).toBe(String(until));
  });

  it('an unknown node: -1, nothing written', async () => {
    id = 'q-unknown';
    expect(await fault(1)).toEqual([-1, 0, 0]);
    expect(await redis.exists(k().node(id))).toBe(0);
  });
});
