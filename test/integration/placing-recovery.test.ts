import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { defineScripts } from '../../shared/lua-scripts.ts';
import { DerivedWorkQueues } from '../../shared/queues.ts';
import { JobShardStore } from '../../shared/store/job-shard.ts';
import { PlacingRecovery } from '../../shared/store/placing-recovery.ts';
import { SlotStore } from '../../shared/store/slots.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

/**
 * Issue 12: a placement is a claim on the job shard (claimJob-4.lua) then a reservation on the
 * node shard (reserveSlot-7.lua). Whatever happens between the two (a selector killed, Redis
 * errors), PlacingRecovery leaves the job either placed and answerable, or dropped and its id
 * retryable — and a reservation still on its way for a dropped claim is refused.
 */
describe('PlacingRecovery', () => {
  let redis: Redis;
  let keys: KeyBuilder;
  let jobs: JobShardStore;
  let slots: SlotStore;
  let queues: DerivedWorkQueues;
  let recovery: PlacingRecovery;
  const node = 'n1';
  const window = 60_000;

  beforeAll(async () => {
    redis = new Redis(redisUrl());
    defineScripts(redis);
    keys = new KeyBuilder(uniquePrefix('placing'), 4);
    jobs = new JobShardStore(redis, keys, {
      retentionMs: 600_000,
      placingWindowMs: window,
      openLookMs: 60_000,
    });
    queues = new DerivedWorkQueues(redis, keys, createLogger('test', 'silent'));
    slots = new SlotStore(redis, keys, { ackTimeoutMs: 60_000, nodeTtlMs: 60_000, inboxLength: 100 }, queues);
    recovery = new PlacingRecovery(keys, jobs, slots, { fenceTtlMs: 60_000 });
    const k = keys.forNode(node);
    await redis.hset(k.node(node), { status: 'ready', draining: 0, running: 0, reserved: 0, max_jobs: 100 });
    await redis.zadd(k.live, Date.now() + 3_600_000, node);
  });
  afterAll(async () => {
    await queues.close();
    await redis.quit();
  });

  const claim = (jobId: string) =>
    jobs.claim({
      jobId,
      request: { src_lang: 'zh', tgt_lang: 'en' },
      tenant: '',
      nodeId: node,
      answer: { job_id: jobId, node_id: node, attempt_id: 1 },
      traceparent: null,
      session: { sessionId: jobId, utteranceIndex: 0, timeoutMs: 5000 },
    });
  const reserve = (jobId: string, claimToken: string) =>
    slots.reserve({ nodeId: node, jobId, attemptId: 1, frame: '{"type":"job_assign"}', claimToken });
  const past = () => Date.now() + window + 1;

  it('before its deadline a placement is left alone: pending without a reservation, placed with one', async () => {
    const c = await claim('early');
    expect(c.claimed).toBe(true);
    expect((await recovery.resolve('early')).outcome).toBe('pending');
    expect((await reserve('early', c.claimed ? c.token : '')).outcome).toBe('reserved');
    expect(await recovery.resolve('early')).toEqual({
      outcome: 'placed',
      answer: JSON.stringify({ job_id: 'early', node_id: node, attempt_id: 1 }),
    });
  });

  it('claimed, never reserved (the selector died): dropped past its deadline, the id retryable, a late reservation refused', async () => {
    const c = await claim('cut');
    if (!c.claimed) throw new Error('not claimed');
    expect((await recovery.resolve('cut', past())).outcome).toBe('dropped');
    expect(await redis.exists(keys.job('cut'))).toBe(0);
    expect(await redis.zscore(keys.placing(keys.jobShardOf('cut')), 'cut')).toBeNull();
    // the dead selector's reservation, still on its way, can no longer take a slot
    const late = await reserve('cut', c.token);
    expect(late.outcome).toBe('fenced');
    expect(await redis.hget(keys.forNode(node).node(node), 'reserved')).toBe('1'); // 'early' only
    // the id is free: a new claim places it anew
    const again = await claim('cut');
    expect(again.claimed).toBe(true);
    expect((await reserve('cut', again.claimed ? again.token : '')).outcome).toBe('reserved');
  });

  it('reserved but never confirmed: placed past its deadline, out of the placing set, the answer kept', async () => {
    const c = await claim('unconfirmed');
    await reserve('unconfirmed', c.claimed ? c.token : '');
    expect((await recovery.resolve('unconfirmed', past())).outcome).toBe('placed');
    expect(await redis.zscore(keys.placing(keys.jobShardOf('unconfirmed')), 'unconfirmed')).toBeNull();
    const repeat = await claim('unconfirmed');
    expect(repeat).toMatchObject({ claimed: false, status: 'dispatched', placingUntil: null });
  });

  it('acked (the reservation became a running job) or moved on: placed, never dropped', async () => {
    await claim('acked');
    await redis.zadd(keys.forNode(node).running, Date.now() + 1000, `acked|${node}|1`);
    expect((await recovery.resolve('acked', past())).outcome).toBe('placed');
    await claim('finished');
    await redis.hset(keys.job('finished'), 'status', 'finished');
    expect((await recovery.resolve('finished', past())).outcome).toBe('placed');
    expect(await redis.hget(keys.job('finished'), 'status')).toBe('finished');
  });

  it('re-pointed by a live placement after recovery looked: not dropped (settled by a later sweep)', async () => {
    const c = await claim('moving');
    if (!c.claimed) throw new Error('not claimed');
    // what a live selector does after a conflict, between recovery's read and its fence
    expect(await jobs.repoint('moving', c.token, node, 'n2', { node_id: 'n2' })).not.toBeNull();
    expect(await jobs.drop('moving', node, c.token)).toBe(false);
    expect(await redis.hget(keys.job('moving'), 'node_id')).toBe('n2');
  });

  it('a resolver whose view went stale (its claim dropped, the id claimed anew on the same node) never drops the new claim', async () => {
    // seen in test/faults/redis-faults.test.ts (the stall): the sweep and a repeated request both
    // resolve the same placement past its deadline; the request drops it, claims the id anew on
    // the same node, reserves and answers 201 — while the sweep, with the first claim's view,
    // fences that first claim and then must not delete the job the client was just told about
    const first = await claim('reclaimed');
    if (!first.claimed) throw new Error('not claimed');
    const stale = await jobs.placingState('reclaimed'); // the sweep's read
    expect(stale?.claimToken).toBe(first.token);
    expect((await recovery.resolve('reclaimed', past())).outcome).toBe('dropped'); // the request's
    const again = await claim('reclaimed');
    if (!again.claimed) throw new Error('not claimed anew');
    // the sweep goes on with its stale view: fences the first claim, then drops
    expect(await slots.fence(node, 'reclaimed', stale!.claimToken, 60_000)).toBe('fenced');
    expect(await jobs.drop('reclaimed', node, stale!.claimToken)).toBe(false);
    // nor does a stale re-point (the first claim's placer after a conflict) move the new claim
    expect(await jobs.repoint('reclaimed', first.token, node, 'n2', { node_id: 'n2' })).toBeNull();
    expect(await redis.hget(keys.job('reclaimed'), 'node_id')).toBe(node);
    // the new claim reserves (the fence names the old claim only) and its job stands
    expect((await reserve('reclaimed', again.token)).outcome).toBe('reserved');
    expect(await redis.hget(keys.job('reclaimed'), 'claim')).toBe(again.token);
    expect((await recovery.resolve('reclaimed', past())).outcome).toBe('placed');
    expect(await redis.exists(keys.job('reclaimed'))).toBe(1);
  });

  it('a sweep settles every placement past its deadline over every job shard', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `swept-${i}`);
    for (const [i, id] of ids.entries()) {
      const c = await claim(id);
      if (i % 2 === 0) await reserve(id, c.claimed ? c.token : '');
    }
    const counts = await recovery.sweep(past());
    expect(counts.placed).toBeGreaterThanOrEqual(6);
    expect(counts.dropped).toBeGreaterThanOrEqual(6);
    for (const [i, id] of ids.entries()) expect(await redis.exists(keys.job(id))).toBe(i % 2 === 0 ? 1 : 0);
    for (let shard = 0; shard < keys.shards; shard++)
      expect(await jobs.placingDue(shard, past(), 100)).toEqual([]);
  });
});
