import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleCutPlacement } from '../../services/selector/cut-placement.ts';
import { JobStore } from '../../services/selector/job-store.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { defineScripts } from '../../shared/lua-scripts.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

/**
 * Issue 11, found by the fault suite (a Cluster master failing over): a first placement cut by
 * a Redis error after which the command may have run left the job `dispatched` and its job_id
 * "still being placed" for 24 h. settleCutPlacement settles it once Redis answers.
 */
describe('settleCutPlacement', () => {
  let redis: Redis;
  let keys: KeyBuilder;
  let jobs: JobStore;
  const placement = { job_id: 'x', attempt_id: 1, node_id: 'n1' };
  beforeAll(() => {
    redis = new Redis(redisUrl());
    defineScripts(redis);
    keys = new KeyBuilder(uniquePrefix('cut'), 4);
    jobs = new JobStore(redis, keys, 60_000);
  });
  afterAll(async () => {
    await redis.quit();
  });

  async function dispatched(jobId: string): Promise<void> {
    expect((await jobs.claim(jobId, {})).claimed).toBe(true);
    await jobs.assign(jobId, 'n1', 1);
  }

  it('the reservation never ran: the job id is given back', async () => {
    await dispatched('cut-1');
    expect(await settleCutPlacement({ redis, keys, jobs }, { jobId: 'cut-1', nodeId: 'n1', placement })).toBe(
      'released',
    );
    expect(await redis.exists(keys.job('cut-1'))).toBe(0);
    expect((await jobs.claim('cut-1', {})).claimed).toBe(true);
  });

  it('the reservation ran: the placement is recorded for repeats', async () => {
    await dispatched('cut-2');
    await redis.set(keys.forNode('n1').reservation('cut-2'), 'n1|1|1-0', 'PX', 60_000);
    expect(await settleCutPlacement({ redis, keys, jobs }, { jobId: 'cut-2', nodeId: 'n1', placement })).toBe(
      'placed',
    );
    expect(JSON.parse((await redis.hget(keys.job('cut-2'), 'placement'))!)).toEqual(placement);
  });

  it('the job moved on (acked: no reservation any more): the placement is recorded, nothing released', async () => {
    await dispatched('cut-3');
    await redis.hset(keys.job('cut-3'), 'status', 'accepted');
    expect(await settleCutPlacement({ redis, keys, jobs }, { jobId: 'cut-3', nodeId: 'n1', placement })).toBe(
      'placed',
    );
    expect(await redis.hget(keys.job('cut-3'), 'status')).toBe('accepted');
  });

  it('the record was never pointed at the node (still `created`): left for createJob to claim again', async () => {
    expect((await jobs.claim('cut-5', {})).claimed).toBe(true);
    expect(await settleCutPlacement({ redis, keys, jobs }, { jobId: 'cut-5', nodeId: 'n1', placement })).toBe(
      'moved_on',
    );
    expect(await redis.hget(keys.job('cut-5'), 'status')).toBe('created');
  });
});
