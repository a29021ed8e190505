import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlotRecount } from '../../services/worker/slot-recount.ts';
import { createWorkerMetrics } from '../../services/worker/worker-metrics.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { SlotCountStore } from '../../shared/store/snapshot.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { testConfig } from '../support/service-harness.ts';

const NODES = 600; // above Redis's listpack limit (128): ZSCAN walks each set a slice at a time

/** The slot recount: O(changed) per tick, with a backstop pass spread over ticks (issue 13), against a real Redis. */
describe('slot recount: the nodes whose holdings changed, and a backstop slice per tick', () => {
  let redis: RedisClient;
  let keys: KeyBuilder;
  const ids = Array.from({ length: NODES }, (_, i) => `recount-${i}`);

  beforeAll(async () => {
    const config = testConfig(uniquePrefix('recount'), { redisUrl: redisUrl() });
    keys = new KeyBuilder(config.prefix, 1);
    redis = createRedisClient(config, createLogger('test', 'silent'), { name: 't', mode: 'fail-fast' });
    await waitUntilReady(redis);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('corrects every leaked counter within one pass, a slice per tick, and waits for the next pass', async () => {
    const k = keys.shard(0);
    const pipeline = redis.pipeline();
    // the node list is :live ∪ :offline: a pass walks both
    ids.forEach((id, i) => pipeline.zadd(i % 3 === 0 ? k.offline : k.live, i, id));
    // every node leaked a reservation, except recount-0, which really holds one and runs one
    for (const id of ids) pipeline.hset(k.node(id), 'status', 'ready', 'reserved', 1, 'committed', 0);
    pipeline.hset(k.node('recount-0'), 'committed', 1);
    pipeline.zadd(k.reservations, Date.now() + 60_000, 'job-a|recount-0|1|1-0');
    pipeline.zadd(k.running, Date.now() + 60_000, 'job-b|recount-0|1');
    await pipeline.exec();

    const registry = createMetricsRegistry('t');
    const recount = new SlotRecount(new SlotCountStore(redis, keys), createWorkerMetrics(registry), {
      sweepTicks: 6,
    });
    const slices: number[] = [];
    let corrected = 0;
    for (let tick = 0; tick < 6; tick++) {
      recount.nextTick();
      const r = await recount.recountShard(0);
      slices.push(r.checked);
      corrected += r.corrected;
    }
    // spread: no tick checked the whole shard; the pass covered it (ZSCAN may repeat an id)
    expect(Math.max(...slices)).toBeLessThan(NODES / 2);
    expect(slices.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(NODES);
    expect(corrected).toBe(NODES - 1);
    const counters = await Promise.all(ids.map((id) => redis.hmget(k.node(id), 'reserved', 'committed')));
    expect(counters[0]).toEqual(['1', '1']);
    for (const c of counters.slice(1)) expect(c).toEqual(['0', '0']);

    // the pass is over and nothing changed: nothing checked until `sweepTicks` ticks after it started
    let idle = 0;
    let tick = 6;
    for (; tick < 20; tick++) {
      recount.nextTick();
      const r = await recount.recountShard(0);
      if (r.checked > 0) break;
      idle++;
    }
    expect(tick).toBe(6 + idle);
    expect(idle).toBeLessThan(6);
    expect(tick).toBeLessThan(13); // the second pass started at most `sweepTicks` after the first
  });

  it('between passes checks only the nodes whose reservations or running jobs changed', async () => {
    const other = new KeyBuilder(uniquePrefix('recount-b'), 1);
    const k = other.shard(0);
    const pipeline = redis.pipeline();
    ids.forEach((id, i) => pipeline.zadd(k.live, i, id)); // the shard's nodes: :live ∪ :offline
    for (const id of ids) pipeline.hset(k.node(id), 'status', 'ready', 'reserved', 0, 'committed', 0);
    const [a, b, c, d] = ids as [string, string, string, string];
    // a and b run a job each, and their counters say so
    for (const id of [a, b]) pipeline.hset(k.node(id), 'committed', 1);
    const due = Date.now() + 60_000;
    pipeline.zadd(k.running, due, `job-a|${a}|1`, due, `job-b|${b}|1`);
    await pipeline.exec();
    const metrics = createWorkerMetrics(createMetricsRegistry('t'));
    // the backstop's slices are ~1 node (ZSCAN COUNT 1): what a tick checks beyond that changed
    const recount = new SlotRecount(new SlotCountStore(redis, other), metrics, { sweepTicks: 1000 });
    const tick = async () => {
      recount.nextTick();
      return recount.recountShard(0);
    };
    const SLICE = 12; // ZSCAN's COUNT is a hint: a step may return a few ids (of 600)
    expect((await tick()).checked).toBeLessThanOrEqual(2 + SLICE); // the first: everything held
    for (let i = 0; i < 3; i++) expect((await tick()).checked).toBeLessThanOrEqual(SLICE);

    // drift around the scripts: a's job gone while its counter stays (a leaked slot); c holds a
    // reservation its counter does not show; d's counter raised with nothing held changes no
    // holding: only the backstop finds it
    await redis.zrem(k.running, `job-a|${a}|1`);
    await redis.zadd(k.reservations, Date.now() + 60_000, `job-c|${c}|1|1-0`);
    await redis.hset(k.node(d), 'reserved', 1);
    const r = await tick();
    expect(r.checked).toBeLessThanOrEqual(2 + SLICE);
    expect(r.corrected).toBeGreaterThanOrEqual(2);
    expect(await redis.hmget(k.node(a), 'reserved', 'committed')).toEqual(['0', '0']);
    expect(await redis.hmget(k.node(c), 'reserved', 'committed')).toEqual(['1', '0']);
    expect(await redis.hmget(k.node(b), 'reserved', 'committed')).toEqual(['0', '1']);
    expect((await tick()).checked).toBeLessThanOrEqual(SLICE); // nothing changed since
  });
});
