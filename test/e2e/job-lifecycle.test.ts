import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { checkpointEntry, TestFleet } from '../support/fleet.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { JOIN_TOKEN, nodeToken, type TestGateway, type TestSelector } from '../support/service-harness.ts';
import { TestStack } from '../support/test-stack.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import type { Frame } from '../support/ws-client.ts';
import { jobPlacementSchema, jobViewSchema } from '../../shared/protocol/client-messages.ts';

describe('job lifecycle: selector → node on another gateway replica → result', () => {
  const prefix = uniquePrefix();
  let stack: TestStack;
  let gwA: TestGateway;
  let selector: TestSelector;
  let redis: Redis;
  let fleet: TestFleet;
  const nodeId = 'life-1';

  beforeAll(async () => {
    stack = await TestStack.start(prefix, { gateways: 2 });
    ({ selector, redis } = stack);
    gwA = stack.gateways[0]!;
    // on replica B
    fleet = stack.track(await TestFleet.connect(stack.gateways[1]!.ws, [nodeId], { max_concurrent_jobs: 2 }));
    fleet.heartbeat(0, 1);
    await stack.waitReady([nodeId]);
  });
  afterAll(() => stack.close());

  const submit = (body: Record<string, unknown>) => stack.submit(body);
  const slots = async () =>
    (await redis.hmget(gwA.keys.forNode(nodeId).node(nodeId), 'reserved', 'committed')).map(Number);

  it('delivers job_assign through the replica holding the socket; ack, started, result; GET long-polls to the result', async () => {
    const socket = fleet.sockets[0]!;
    const placed = await submit({
      job_id: 'life-job-1',
      payload: { session_id: 's1', utterance_index: 7, audio: 'AAA', job_id: 'spoofed' },
    });
    expect(placed.status).toBe(201);
    // docs/JOB-API.md is generated from these schemas: the real answer has their fields, no others
    jobPlacementSchema.strict().parse(placed.body);
    const assign: Frame = await socket.nextOfType('job_assign');
    expect(assign).toMatchObject({
      job_id: 'life-job-1',
      attempt_id: 1,
      session_id: 's1',
      utterance_index: 7,
      audio: 'AAA',
      src_lang: 'zh',
      tgt_lang: 'en',
    });
    expect(await slots()).toEqual([1, 0]);

    const waiting = selector.api('/v1/jobs/life-job-1?wait_ms=10000');
    socket.send(frame('job_ack', { job_id: 'life-job-1', attempt_id: 1, node_id: nodeId }));
    await waitFor(async () => (await slots()).join() === '0,1');
    socket.send(frame('job_started', { job_id: 'life-job-1', attempt_id: 1, node_id: nodeId }));
    socket.send(
      frame('job_result', {
        job_id: 'life-job-1',
        attempt_id: 1,
        node_id: nodeId,
        success: true,
        text_translated: 'hello',
      }),
    );
    const view = (await (await waiting).json()) as Record<string, unknown>;
    expect(view).toMatchObject({
      job_id: 'life-job-1',
      status: 'finished',
      node_id: nodeId,
      attempt_id: 1,
      attempts: [{ attempt_id: 1, node_id: nodeId, status: 'finished' }],
      result: { success: true, text_translated: 'hello' },
    });
    for (const t of ['dispatched_at', 'accepted_at', 'started_at', 'finished_at'])
      expect(view[t]).toEqual(expect.any(Number));
    jobViewSchema.strict().parse(view);
    expect(await slots()).toEqual([0, 0]);
  });

  it('a duplicate result leaves one terminal state; a stale attempt is ignored (409 over HTTP); counters never go negative', async () => {
    const socket = fleet.sockets[0]!;
    expect((await submit({ job_id: 'life-job-2' })).status).toBe(201);
    await socket.nextOfType('job_assign');
    const result = (success: boolean, attempt = 1) =>
      frame('job_result', {
        job_id: 'life-job-2',
        attempt_id: attempt,
        node_id: nodeId,
        success,
        text_translated: String(success),
      });
    socket.send(result(true));
    socket.send(result(false));
    await waitFor(
      async () =>
        ((await (await selector.api('/v1/jobs/life-job-2')).json()) as { status: string }).status ===
        'finished',
    );
    const view = (await (await selector.api('/v1/jobs/life-job-2')).json()) as {
      result: { text_translated: string };
    };
    expect(view.result.text_translated).toBe('true');
    const stale = await fetch(`${gwA.http}/v1/nodes/${nodeId}/jobs/life-job-2/result`, {
      method: 'POST',
      headers: { authorization: `Bearer ${nodeToken(nodeId)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ job_id: 'life-job-2', attempt_id: 2, node_id: nodeId, success: true }),
    });
    expect(stale.status).toBe(409);
    expect(await slots()).toEqual([0, 0]);
  });

  it('a node that answers at once never races its own dispatch: every step is recorded', async () => {
    const socket = fleet.sockets[0]!;
    // answer every assignment the moment it arrives: ack, started and result back to back
    socket.ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as Frame;
      if (f.type !== 'job_assign' || !String(f['job_id']).startsWith('instant-')) return;
      const ids = { job_id: f['job_id'], attempt_id: f['attempt_id'], node_id: nodeId };
      socket.send(frame('job_ack', ids));
      socket.send(frame('job_started', ids));
      socket.send(frame('job_result', { ...ids, success: true }));
    });
    for (let i = 0; i < 30; i++) {
      const id = `instant-${i}`;
      // one at a time: the node has 2 slots and the selector's view of them lags by a flush
      await waitFor(async () => (await submit({ job_id: id })).status === 201);
      const view = (await (await selector.api(`/v1/jobs/${id}?wait_ms=5000`)).json()) as Record<
        string,
        unknown
      >;
      expect(view['status'], id).toBe('finished');
      expect(typeof view['accepted_at'], id).toBe('number');
      expect(typeof view['started_at'], id).toBe('number');
    }
    expect(await slots()).toEqual([0, 0]);
  });

  it('a node on HTTP receives its assignments in heartbeat responses until it acks', async () => {
    const httpNode = 'life-http-1';
    // the join token registers; the node token does the rest
    const post = (path: string, body: unknown) =>
      fetch(`${gwA.http}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${path === '/v1/nodes/register' ? JOIN_TOKEN : nodeToken(httpNode)}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
    expect((await post('/v1/nodes/register', registerBody({ node_id: httpNode }))).status).toBe(201);
    expect(
      (await post(`/v1/nodes/${httpNode}/heartbeat`, heartbeatBody(httpNode, { timestamp: 1 }))).status,
    ).toBe(200);
    await waitFor(async () => (await checkpointEntry(redis, gwA.keys, httpNode))?.status === 'ready');
    await waitFor(
      async () => ((await (await selector.api('/v1/snapshot')).json()) as { nodes: number }).nodes === 2,
    );

    const placed = await submit({ job_id: 'life-job-3', preferred_node_id: httpNode });
    expect(placed.body['node_id']).toBe(httpNode);
    const hb = async (ts: number) =>
      (await (
        await post(`/v1/nodes/${httpNode}/heartbeat`, heartbeatBody(httpNode, { timestamp: ts }))
      ).json()) as { assignments: Frame[] };
    expect((await hb(2)).assignments).toMatchObject([
      { type: 'job_assign', job_id: 'life-job-3', attempt_id: 1 },
    ]);
    expect((await hb(3)).assignments).toHaveLength(1); // still pending: at least once
    expect(
      (await post(`/v1/nodes/${httpNode}/jobs/life-job-3/ack`, { job_id: 'life-job-3', attempt_id: 1 }))
        .status,
    ).toBe(200);
    expect((await hb(4)).assignments).toEqual([]);
  });
});
