import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { checkpointEntry } from '../support/fleet.ts';
import { clientFrames, LinguaReplayNode, schedulerE2e } from '../support/lingua-node.ts';
import { JOIN_TOKEN, scrape, type TestGateway, type TestSelector } from '../support/service-harness.ts';
import { TestStack } from '../support/test-stack.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import { TestSocket, type Frame } from '../support/ws-client.ts';

/**
 * The lingua node client's recorded frames (test/fixtures/lingua/), replayed verbatim through
 * real gateways, a worker and a selector: both service bundles register and become eligible,
 * a reconnect in the client's order resumes the node, the original scheduler's own test node
 * works too, and none of them ever gets an error frame.
 */
describe('lingua compatibility: registration, pairs, reconnect (2 gateways, worker, selector)', () => {
  const prefix = uniquePrefix();
  let stack: TestStack;
  let gwA: TestGateway;
  let gwB: TestGateway;
  let selector: TestSelector;
  let redis: Redis;
  let core: LinguaReplayNode;
  let full: LinguaReplayNode;

  const snapshotHas = async (id: string) =>
    (await (await selector.api(`/v1/nodes/${id}`)).json()) as { status?: string; types?: string[] };
  const submit = (body: Record<string, unknown>) => stack.submit(body);

  beforeAll(async () => {
    stack = await TestStack.start(prefix, { gateways: 2 });
    ({ selector, redis } = stack);
    [gwA, gwB] = stack.gateways as [TestGateway, TestGateway];
    core = stack.track(await LinguaReplayNode.connect(gwA.ws, JOIN_TOKEN, 'core'));
    full = stack.track(await LinguaReplayNode.connect(gwB.ws, JOIN_TOKEN, 'full'));
  });
  afterAll(() => stack.close());

  it('both service bundles register as recorded (node_id null: generated) and become ready', async () => {
    for (const node of [core, full]) {
      await node.register();
      node.heartbeat();
    }
    for (const node of [core, full]) {
      const id = node.nodeId!;
      await waitFor(async () => (await checkpointEntry(redis, gwA.keys, id))?.status === 'ready');
      await waitFor(async () => (await snapshotHas(id)).status === 'ready');
    }
    const fullEntry = (await checkpointEntry(redis, gwA.keys, full.nodeId!))!;
    // unknown service types are stored like the known ones
    expect(fullEntry.types).toEqual(
      expect.arrayContaining(['asr', 'nmt', 'tts', 'semantic', 'tone', 'phonetic', 'punctuation']),
    );
    // no nmt_capabilities, no supported_language_pairs: asr_languages × semantic_languages
    for (const node of [core, full]) {
      expect((await checkpointEntry(redis, gwA.keys, node.nodeId!))!.pools).toEqual(
        expect.arrayContaining(['zh:en', 'en:zh']),
      );
    }
    const pools = (await (await selector.api('/v1/pools')).json()) as {
      pools: { pool: string; nodes: number }[];
    };
    expect(pools.pools).toEqual(
      expect.arrayContaining([
        { pool: 'zh:en', nodes: 2 },
        { pool: 'en:zh', nodes: 2 },
      ]),
    );
    // the heartbeat with processing_metrics is applied too
    core.heartbeat(true);
    await waitFor(
      async () => (await redis.hget(gwA.keys.forNode(core.nodeId!).node(core.nodeId!), 'status')) === 'ready',
    );
    expect(core.errors).toEqual([]);
    expect(full.errors).toEqual([]);
  });

  it('a node sending every recorded service type is eligible for jobs needing them (use_phonetic, use_punctuation)', async () => {
    const placed = await submit({
      src_lang: 'zh',
      tgt_lang: 'en',
      pipeline: { use_semantic: true, use_phonetic: true, use_punctuation: true },
      dry_run: true,
    });
    expect(placed.status).toBe(200);
    expect(placed.body['node_id']).toBe(full.nodeId);
    expect(placed.body['breakdown']).toMatchObject({ rejected: { model_not_available: 1 } });
  });

  it('reconnect in the client order (heartbeat with the old id, then node_register with it) resumes the node', async () => {
    const id = core.nodeId!;
    await core.reconnect();
    expect(core.nodeId).toBe(id);
    core.heartbeat();
    // the live record: the re-registration made it `registering` until that heartbeat
    await waitFor(async () => (await redis.hget(gwA.keys.forNode(id).node(id), 'status')) === 'ready');
    await waitFor(async () => (await snapshotHas(id)).status === 'ready');
    const placed = await submit({ src_lang: 'en', tgt_lang: 'zh', exclude_node_ids: [full.nodeId] });
    expect(placed.body['node_id']).toBe(id);
    expect(placed.status).toBe(201);
    const assign = await core.nextAssign();
    expect(assign['job_id']).toBe(placed.body['job_id']);
    core.result(assign);
    await waitFor(async () => {
      const v = (await (await selector.api(`/v1/jobs/${String(placed.body['job_id'])}`)).json()) as Frame;
      return v['status'] === 'finished';
    });
    expect(core.errors).toEqual([]);
    expect(clientFrames.reconnect_first_frames).toEqual(['node_heartbeat', 'node_register']);
  });

  it('the original scheduler\'s e2e test node (platform "test", acks) registers and runs its en→zh utterance', async () => {
    const socket = await TestSocket.open(gwA.ws, JOIN_TOKEN);
    const errors: Frame[] = [];
    socket.ws.on('message', (d) => {
      const f = JSON.parse((d as Buffer).toString('utf8')) as Frame;
      if (f.type === 'error') errors.push(f);
    });
    const fill = (f: Frame, values: Record<string, unknown>) =>
      JSON.stringify(
        Object.fromEntries(
          Object.entries(f).map(([k, v]) => [k, typeof v === 'string' && v in values ? values[v] : v]),
        ),
      );
    const nodeId = schedulerE2e.node_id;
    socket.send(fill(schedulerE2e['node_register']!, { NODE_ID: nodeId }));
    expect(await socket.nextOfType('node_register_ack')).toMatchObject({ node_id: nodeId });
    socket.send(fill(schedulerE2e['node_heartbeat']!, { NODE_ID: nodeId, TIMESTAMP: Date.now() }));
    await waitFor(async () => (await snapshotHas(nodeId)).status === 'ready');

    const u = schedulerE2e.session_utterance;
    const placed = await submit({ ...u, exclude_node_ids: [core.nodeId, full.nodeId] });
    expect(placed.status).toBe(201);
    const assign = await socket.nextOfType('job_assign');
    // every field its serde types cannot do without, with their JSON types
    const json = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
    const kinds: Record<string, string> = { string: 'string', u32: 'number', u64: 'number', bool: 'boolean' };
    for (const [field, type] of Object.entries(schedulerE2e.job_assign_required)) {
      if (field === 'comment') continue;
      if (typeof type === 'object') {
        for (const [sub, t] of Object.entries(type as Record<string, string>))
          expect(json((assign[field] as Record<string, unknown>)[sub]), `${field}.${sub}`).toBe(kinds[t]);
      } else expect(json(assign[field]), field).toBe(kinds[type as string]);
    }
    expect(assign).toMatchObject({ session_id: 's-ws-e2e', utterance_index: 0, trace_id: 'trace-ws-e2e' });
    const ids = {
      NODE_ID: nodeId,
      JOB_ID: assign['job_id'],
      JOB_ATTEMPT: assign['attempt_id'],
      JOB_SESSION: assign['session_id'],
      JOB_TRACE: assign['trace_id'],
      JOB_UTTERANCE: assign['utterance_index'],
    };
    for (const name of ['job_ack', 'job_started', 'job_result']) socket.send(fill(schedulerE2e[name]!, ids));
    await waitFor(async () => {
      const v = (await (await selector.api(`/v1/jobs/${String(assign['job_id'])}`)).json()) as Frame;
      return v['status'] === 'finished' && v;
    });
    expect(errors).toEqual([]);
    await socket.close();
  });

  it('a refused registration is counted by code and field (the client shows nothing)', async () => {
    const socket = await TestSocket.open(gwB.ws, JOIN_TOKEN);
    const reg = JSON.parse(JSON.stringify(clientFrames.profiles.core['node_register'])) as Frame;
    (reg['hardware'] as Record<string, unknown>)['cpu_cores'] = -2;
    socket.send(JSON.stringify(reg));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'INVALID_MESSAGE' });
    const labels = { code: 'INVALID_MESSAGE', field: 'hardware.cpu_cores' };
    expect(await scrape(`${gwB.http}/metrics`, 'sb_registration_refusals_total', labels)).toBe(1);
    await socket.close();
  });
});
