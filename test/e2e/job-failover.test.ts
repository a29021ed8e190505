import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { TestFleet } from '../support/fleet.ts';
import { frame } from '../support/node-fixtures.ts';
import type { TestGateway } from '../support/service-harness.ts';
import { TestStack } from '../support/test-stack.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';

interface JobView {
  status: string;
  node_id: string;
  attempt_id: number;
  attempts: { attempt_id: number; node_id: string; status: string; reason?: string }[];
  error?: { code: string };
}

describe('timeouts and failover (2 gateways, worker, selector)', () => {
  const prefix = uniquePrefix();
  const env = {
    SB_ACK_TIMEOUT_MS: '600',
    SB_JOB_TIMEOUT_MS: '1000',
    SB_REAPER_INTERVAL_MS: '200',
    SB_MAX_ATTEMPTS: '3',
    // these nodes time out on purpose, again and again: failover, not quarantine, is tested here
    SB_QUARANTINE_FAULTS: '0',
  };
  let stack: TestStack;
  let gwA: TestGateway;
  let gwB: TestGateway;
  let redis: Redis;
  let a: TestFleet;
  let b: TestFleet;

  beforeAll(async () => {
    stack = await TestStack.start(prefix, { gateways: 2, env });
    ({ redis } = stack);
    [gwA, gwB] = stack.gateways as [TestGateway, TestGateway];
    a = stack.track(await TestFleet.connect(gwA.ws, ['fo-a']));
    b = stack.track(await TestFleet.connect(gwB.ws, ['fo-b']));
    a.heartbeat(0, 1);
    b.heartbeat(0, 1);
    await stack.waitReady(['fo-b', 'fo-a']);
  });
  afterAll(() => stack.close());

  const submit = async (body: Record<string, unknown>) => (await stack.submit(body)).body;
  const view = (id: string) => stack.view<JobView>(id);
  const counters = async () => {
    const rows = await Promise.all(
      ['fo-a', 'fo-b'].map((id) => redis.hmget(gwA.keys.forNode(id).node(id), 'reserved', 'committed')),
    );
    return rows.flat().map(Number);
  };
  const finish = (fleet: TestFleet, node: string, job: string, attempt: number) => {
    const s = fleet.sockets[0]!;
    s.send(frame('job_ack', { job_id: job, attempt_id: attempt, node_id: node }));
    s.send(frame('job_result', { job_id: job, attempt_id: attempt, node_id: node, success: true }));
  };

  it('a node that never acks: the reservation expires and the job moves to another node', async () => {
    const placed = await submit({ job_id: 'fo-1', preferred_node_id: 'fo-a' });
    expect(placed['node_id']).toBe('fo-a');
    await a.sockets[0]!.nextOfType('job_assign'); // and never acks
    const assign = await b.sockets[0]!.next((f) => f.type === 'job_assign' && f['job_id'] === 'fo-1', 10_000);
    expect(assign['attempt_id']).toBe(2);
    finish(b, 'fo-b', 'fo-1', 2);
    await waitFor(async () => (await view('fo-1')).status === 'finished');
    expect((await view('fo-1')).attempts).toMatchObject([
      { attempt_id: 1, node_id: 'fo-a', status: 'timed_out', reason: 'ack_timeout' },
      { attempt_id: 2, node_id: 'fo-b', status: 'finished' },
    ]);
    // a late ack of the expired attempt changes nothing
    a.sockets[0]!.send(frame('job_ack', { job_id: 'fo-1', attempt_id: 1, node_id: 'fo-a' }));
    await waitFor(async () => (await counters()).every((c) => c === 0));
  });

  it('a job without a result in time: job_cancel to the node, failover to another', async () => {
    await submit({ job_id: 'fo-2', preferred_node_id: 'fo-a' });
    const s = a.sockets[0]!;
    const assign = await s.next((f) => f.type === 'job_assign' && f['job_id'] === 'fo-2');
    s.send(frame('job_ack', { job_id: 'fo-2', attempt_id: assign['attempt_id'], node_id: 'fo-a' }));
    const cancel = await s.next((f) => f.type === 'job_cancel' && f['job_id'] === 'fo-2', 10_000);
    expect(cancel['reason']).toBe('job_timeout');
    await b.sockets[0]!.next((f) => f.type === 'job_assign' && f['job_id'] === 'fo-2', 10_000);
    finish(b, 'fo-b', 'fo-2', 2);
    await waitFor(async () => (await view('fo-2')).status === 'finished');
    await waitFor(async () => (await counters()).every((c) => c === 0));
  });

  it('after SB_MAX_ATTEMPTS timed-out attempts the job fails with JOB_TIMEOUT; counters return to 0', async () => {
    await submit({ job_id: 'fo-3', preferred_node_id: 'fo-a' });
    // nobody acks: attempt 1 on one node, 2 on the other, then no node is left untried
    await waitFor(async () => (await view('fo-3')).status === 'failed', { timeoutMs: 15_000 });
    const v = await view('fo-3');
    expect(v.error?.code).toBe('JOB_TIMEOUT');
    expect(v.attempts.map((x) => x.node_id).sort()).toEqual(['fo-a', 'fo-b']);
    await waitFor(async () => (await counters()).every((c) => c === 0));
  });

  it('a node that dies mid-job: its jobs fail over at once', async () => {
    await submit({ job_id: 'fo-4', preferred_node_id: 'fo-a' });
    const s = a.sockets[0]!;
    const assign = await s.next((f) => f.type === 'job_assign' && f['job_id'] === 'fo-4');
    s.send(frame('job_ack', { job_id: 'fo-4', attempt_id: assign['attempt_id'], node_id: 'fo-a' }));
    await waitFor(async () => (await view('fo-4')).status === 'accepted');
    await a.close(); // the node dies: its socket closes, it is offline
    await b.sockets[0]!.next((f) => f.type === 'job_assign' && f['job_id'] === 'fo-4', 5_000);
    expect((await view('fo-4')).attempts[0]).toMatchObject({
      node_id: 'fo-a',
      status: 'timed_out',
      reason: 'node_offline',
    });
    finish(b, 'fo-b', 'fo-4', 2);
    await waitFor(async () => (await view('fo-4')).status === 'finished');
    await waitFor(async () => (await counters()).every((c) => c === 0));
  });
});
