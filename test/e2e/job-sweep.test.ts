import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { TestFleet } from '../support/fleet.ts';
import { frame } from '../support/node-fixtures.ts';
import type { TestGateway, TestSelector } from '../support/service-harness.ts';
import { TestStack } from '../support/test-stack.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';

interface JobView {
  status: string;
  attempts: { attempt_id: number; node_id: string; status: string; reason?: string }[];
}

/**
 * The job sweep (services/worker/job-sweep.ts): what a Cluster master that failed over can
 * lose — a slot it acknowledged and never replicated — is removed here behind the job's back,
 * on the node's shard only, exactly as the promoted replica would lack it. The job record still
 * says dispatched/accepted; no node-side timeout can fire; the sweep must fail it over.
 */
describe('job sweep: a slot its node shard lost (gateway, worker, selector)', () => {
  const prefix = uniquePrefix();
  const env = {
    SB_ACK_TIMEOUT_MS: '600',
    SB_JOB_TIMEOUT_MS: '4000', // sw-3 finishes before its node-side deadline
    SB_REAPER_INTERVAL_MS: '200', // sweep margin 4 × 200 + 1000 = 1.8 s
    SB_MAX_ATTEMPTS: '3',
    SB_QUARANTINE_FAULTS: '0',
  };
  let stack: TestStack;
  let gw: TestGateway;
  let selector: TestSelector;
  let redis: Redis;
  let a: TestFleet;
  let b: TestFleet;

  beforeAll(async () => {
    stack = await TestStack.start(prefix, { env });
    ({ gw, selector, redis } = stack);
    a = stack.track(await TestFleet.connect(gw.ws, ['sw-a']));
    b = stack.track(await TestFleet.connect(gw.ws, ['sw-b']));
    a.heartbeat(0, 1);
    b.heartbeat(0, 1);
    await stack.waitReady(['sw-a', 'sw-b']);
  });
  afterAll(() => stack.close());

  const submit = (id: string) =>
    selector.api('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({ job_id: id, src_lang: 'zh', tgt_lang: 'en', preferred_node_id: 'sw-a' }),
    });
  const view = (id: string) => stack.view<JobView>(id);
  const counters = async () => {
    const rows = await Promise.all(
      ['sw-a', 'sw-b'].map((id) => redis.hmget(gw.keys.forNode(id).node(id), 'reserved', 'committed')),
    );
    return rows.flat().map(Number);
  };
  const k = () => gw.keys.forNode('sw-a');
  const finishOnB = async (job: string) => {
    const s = b.sockets[0]!;
    const assign = await s.next((f) => f.type === 'job_assign' && f['job_id'] === job, 15_000);
    expect(assign['attempt_id']).toBe(2);
    s.send(frame('job_ack', { job_id: job, attempt_id: 2, node_id: 'sw-b' }));
    s.send(frame('job_result', { job_id: job, attempt_id: 2, node_id: 'sw-b', success: true }));
    await waitFor(async () => (await view(job)).status === 'finished');
    expect((await view(job)).attempts).toMatchObject([
      { attempt_id: 1, node_id: 'sw-a', status: 'timed_out', reason: 'slot_lost' },
      { attempt_id: 2, node_id: 'sw-b', status: 'finished' },
    ]);
    await waitFor(async () => (await counters()).every((c) => c === 0));
  };

  it('a running job its node shard lost (accepted, no :run entry) fails over and finishes elsewhere', async () => {
    expect((await submit('sw-1')).status).toBe(201);
    const s = a.sockets[0]!;
    await s.next((f) => f.type === 'job_assign' && f['job_id'] === 'sw-1');
    s.send(frame('job_ack', { job_id: 'sw-1', attempt_id: 1, node_id: 'sw-a' }));
    await waitFor(async () => (await view('sw-1')).status === 'accepted');
    // the promoted replica never got the ack: no running job, no committed slot
    expect(await redis.zrem(k().running, 'sw-1|sw-a|1')).toBe(1);
    await redis.hincrby(k().node('sw-a'), 'committed', -1);
    await finishOnB('sw-1');
  });

  it('a reservation its node shard lost (dispatched, never acked) fails over and finishes elsewhere', async () => {
    expect((await submit('sw-2')).status).toBe(201);
    await a.sockets[0]!.next((f) => f.type === 'job_assign' && f['job_id'] === 'sw-2'); // never acked
    const held = await redis.get(k().reservation('sw-2'));
    expect(held).toMatch(/^sw-a\|1\|/);
    // the promoted replica never got the reservation
    await redis.del(k().reservation('sw-2'));
    expect(await redis.zrem(k().reservations, `sw-2|${held!}`)).toBe(1);
    await redis.hincrby(k().node('sw-a'), 'reserved', -1);
    await finishOnB('sw-2');
  });

  it('a finished job is swept out of the index; one still running on its node is left alone', async () => {
    expect((await submit('sw-3')).status).toBe(201);
    const s = a.sockets[0]!;
    await s.next((f) => f.type === 'job_assign' && f['job_id'] === 'sw-3');
    s.send(frame('job_ack', { job_id: 'sw-3', attempt_id: 1, node_id: 'sw-a' }));
    const open = gw.keys.openJobs(gw.keys.jobShardOf('sw-3'));
    expect(await redis.zscore(open, 'sw-3')).not.toBeNull();
    // past its first look (ack 600 ms + margin 1.8 s) the sweep finds its running slot: re-armed
    await new Promise((r) => setTimeout(r, 3000));
    expect((await view('sw-3')).attempts).toMatchObject([{ attempt_id: 1, status: 'accepted' }]);
    s.send(frame('job_result', { job_id: 'sw-3', attempt_id: 1, node_id: 'sw-a', success: true }));
    await waitFor(async () => (await view('sw-3')).status === 'finished');
    await waitFor(async () => (await redis.zscore(open, 'sw-3')) === null, { timeoutMs: 10_000 });
    await waitFor(async () => (await counters()).every((c) => c === 0));
  });
});
