import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetSimulator } from '../../agent/fleet-simulator.ts';
import { LinguaNodeAgent } from '../../agent/lingua-agent.ts';
import { JOIN_TOKEN, startTestGateway } from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { TestStack } from '../support/test-stack.ts';

/**
 * The agent's `--lingua` mode (agent/lingua-agent.ts) and a fleet mixing both dialects,
 * against real gateways, a worker and a selector: the lingua nodes register with generated
 * ids, run jobs without acking, stream partials, resume after a reconnect in the client's
 * order, and never get an error frame.
 */
describe('the agent in the lingua dialect (2 gateways, worker, selector)', () => {
  const prefix = uniquePrefix();
  let stack: TestStack;
  const nodes: LinguaNodeAgent[] = [];
  const gw = (i: number) => stack.gateways[i]!;

  const submit = (body: Record<string, unknown>) => stack.submit(body);
  const finished = (id: unknown) =>
    waitFor(
      async () => {
        const v = await stack.view(id, 2000);
        return (v['status'] === 'finished' || v['status'] === 'failed') && v;
      },
      { timeoutMs: 15_000 },
    );
  const lingua = (bundle: 'core' | 'full', urls: string[]) => {
    const node = new LinguaNodeAgent({
      gatewayUrls: urls,
      token: JOIN_TOKEN,
      shape: {
        bundle,
        languages: ['zh', 'en'],
        tts: ['zh', 'en'],
        gpu: { name: 'L4', memory_gb: 24 },
        cpuCores: 8,
        memoryGb: 32,
      },
      heartbeatIntervalMs: 500,
      reconnectMs: 100,
      job: { meanMs: 400, sigma: 0 },
    });
    nodes.push(node);
    return node;
  };

  beforeAll(async () => {
    stack = await TestStack.start(prefix, { gateways: 2 });
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop(0)));
    await stack?.close();
  });

  it('registers (generated id), runs zh→en and en→zh without acking, streams partials; no error frame', async () => {
    const core = lingua('core', [gw(0).ws]);
    const full = lingua('full', [gw(1).ws]);
    core.start();
    full.start();
    await waitFor(() => core.registered && full.registered);
    expect(core.nodeId).toMatch(/^node-[0-9a-f]{8}$/);
    await waitFor(async () => {
      const listed = (await (await stack.selector.api('/v1/nodes')).json()) as {
        nodes: { status: string }[];
      };
      return listed.nodes.filter((n) => n.status === 'ready').length === 2;
    });
    for (const [src, tgt, node] of [
      ['zh', 'en', core],
      ['en', 'zh', full],
    ] as const) {
      const placed = await submit({
        src_lang: src,
        tgt_lang: tgt,
        exclude_node_ids: [node === core ? full.nodeId : core.nodeId],
        pipeline: { use_semantic: true },
        payload: { enable_streaming_asr: true, partial_update_interval_ms: 100 },
      });
      expect(placed.status, JSON.stringify(placed.body)).toBe(201);
      const v = await finished(placed.body['job_id']);
      expect(v).toMatchObject({ status: 'finished', node_id: node.nodeId, attempt_id: 1 });
      expect((v['partials'] as unknown[]).length).toBeGreaterThanOrEqual(2);
    }
    const phonetic = await submit({ src_lang: 'zh', tgt_lang: 'en', pipeline: { use_phonetic: true } });
    expect(phonetic.body['node_id']).toBe(full.nodeId);
    await finished(phonetic.body['job_id']);
    expect(core.stats.errors).toEqual({});
    expect(full.stats.errors).toEqual({});
    expect(core.stats.partials + full.stats.partials).toBeGreaterThanOrEqual(4);
  });

  it('after its gateway goes away, reconnects (heartbeat, then register with its old id) and resumes', async () => {
    const node = lingua('core', [gw(0).ws, gw(1).ws]);
    node.start();
    await waitFor(() => node.registered);
    const id = node.nodeId;
    const gwC = await startTestGateway(prefix, { redisUrl: redisUrl() });
    const moving = lingua('full', [gwC.ws, gw(1).ws]);
    moving.start();
    await waitFor(() => moving.registered);
    const movingId = moving.nodeId;
    await gwC.close(); // closes its sockets with 1001
    await waitFor(() => moving.stats.registrations === 2, { timeoutMs: 10_000 });
    expect(moving.nodeId).toBe(movingId);
    // eligible again once its heartbeat after the new registration is in the live record and the snapshot
    await waitFor(async () => {
      const v = (await (await stack.selector.api(`/v1/nodes/${movingId}`)).json()) as {
        live: { status: string };
      };
      return v.live.status === 'ready';
    });
    await waitFor(
      async () =>
        (await submit({ src_lang: 'zh', tgt_lang: 'en', preferred_node_id: movingId, dry_run: true })).body[
          'node_id'
        ] === movingId,
    );
    const placed = await submit({ src_lang: 'zh', tgt_lang: 'en', preferred_node_id: movingId });
    expect(placed.body['node_id']).toBe(movingId);
    expect(await finished(placed.body['job_id'])).toMatchObject({ status: 'finished' });
    expect(moving.stats.errors).toEqual({});
    expect(node.nodeId).toBe(id);
  });

  it('a fleet mixes both dialects (--lingua-share)', async () => {
    const fleet = new FleetSimulator({
      gatewayUrls: [gw(0).ws, gw(1).ws],
      token: JOIN_TOKEN,
      nodes: 4,
      idPrefix: `mix-${prefix}`,
      linguaShare: 0.5,
      heartbeatIntervalMs: 500,
      job: { meanMs: 200, sigma: 0 },
      summaryIntervalMs: 0,
      seed: 7,
    });
    expect([fleet.agents.length, fleet.linguaNodes.length]).toEqual([2, 2]);
    try {
      await fleet.start();
      await waitFor(() => fleet.registered === 4, { timeoutMs: 10_000 });
      // Switchboard's agents keep their ids; the lingua nodes got theirs from the gateway
      expect(fleet.agents.map((a) => a.nodeId)).toEqual([`mix-${prefix}-0000`, `mix-${prefix}-0002`]);
      for (const node of fleet.linguaNodes) expect(node.nodeId).toMatch(/^node-[0-9a-f]{8}$/);
      await waitFor(async () => {
        const ids = (
          (await (await stack.selector.api('/v1/nodes')).json()) as { nodes: { id: string }[] }
        ).nodes.map((n) => n.id);
        return fleet.nodes.every((n) => ids.includes(n.nodeId!));
      });
      expect(fleet.summary().errors).toEqual({});
    } finally {
      await fleet.stop();
    }
  });
});
