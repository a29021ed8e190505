import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignReads, LinguaReplayNode } from '../support/lingua-node.ts';
import { JOIN_TOKEN, type TestSelector } from '../support/service-harness.ts';
import { TestStack } from '../support/test-stack.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import type { Frame } from '../support/ws-client.ts';

/**
 * Jobs on nodes replaying the lingua client's recorded frames (test/fixtures/lingua/): zh→en
 * and en→zh placed on them, job_assign with every field the client reads and the client's
 * types, sessions that never collide and stay on their node, partials while the job runs (GET
 * and Server-Sent Events), and a job that times out gets job_cancel. No error frame, ever.
 */
describe('lingua compatibility: jobs (gateway, worker, selector)', () => {
  const prefix = uniquePrefix();
  let stack: TestStack;
  let selector: TestSelector;
  let core: LinguaReplayNode;
  let full: LinguaReplayNode;

  const submit = (body: Record<string, unknown>) => stack.submit(body);
  const view = (id: unknown, waitMs = 0) => stack.view<Frame>(id, waitMs);

  beforeAll(async () => {
    stack = await TestStack.start(prefix, { workerEnv: { SB_REAPER_INTERVAL_MS: '200' } });
    ({ selector } = stack);
    core = stack.track(await LinguaReplayNode.connect(stack.gw.ws, JOIN_TOKEN, 'core'));
    full = stack.track(await LinguaReplayNode.connect(stack.gw.ws, JOIN_TOKEN, 'full'));
    for (const node of [core, full]) {
      await node.register();
      node.heartbeat();
    }
    await waitFor(async () => {
      const listed = (await (await selector.api('/v1/nodes')).json()) as {
        nodes: { status: string; pools: string[] }[];
      };
      return listed.nodes.filter((n) => n.status === 'ready' && n.pools.includes('en:zh')).length === 2;
    });
  });
  afterAll(async () => {
    expect(core.errors).toEqual([]);
    expect(full.errors).toEqual([]);
    await stack.close();
  });

  const nodeOf = (id: unknown) => (id === core.nodeId ? core : full);

  it('places zh→en and en→zh on them; job_assign has every field the client reads, with its types', async () => {
    for (const [src, tgt] of [
      ['zh', 'en'],
      ['en', 'zh'],
    ]) {
      const placed = await submit({
        src_lang: src,
        tgt_lang: tgt,
        pipeline: { use_semantic: true, use_tone: false },
        payload: { audio: 'T2dnUwACAAAAAAAAAAA=', audio_format: 'opus', sample_rate: 16000, turn_id: 't-1' },
      });
      expect(placed.status, JSON.stringify(placed.body)).toBe(201);
      const node = nodeOf(placed.body['node_id']);
      const assign = await node.nextAssign();
      const json = (v: unknown) => (v === null ? 'null' : typeof v);
      for (const [field, spec] of Object.entries(assignReads.required)) {
        if (field === 'comment') continue;
        const value = field
          .split('.')
          .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], assign);
        const type = (spec as { type: string }).type;
        expect(type.split('|'), `${field}: ${JSON.stringify(value)}`).toContain(json(value));
      }
      expect(assign).toMatchObject({
        src_lang: src,
        tgt_lang: tgt,
        audio_format: 'opus',
        turn_id: 't-1',
        pipeline: { use_asr: true, use_nmt: true, use_tts: true, use_semantic: true, use_tone: false },
      });
      node.result(assign);
      expect((await view(placed.body['job_id'], 5000))['status']).toBe('finished');
    }
  });

  it('passes on every pipeline flag the request set (phonetic, lexicon, any use_<type>)', async () => {
    const placed = await submit({
      src_lang: 'zh',
      tgt_lang: 'en',
      pipeline: { use_phonetic: true, use_lexicon: false, use_punctuation: true },
    });
    expect(placed.status, JSON.stringify(placed.body)).toBe(201);
    expect(placed.body['node_id']).toBe(full.nodeId); // core has neither phonetic nor punctuation
    const assign = await full.nextAssign();
    expect(assign['pipeline']).toEqual({
      use_asr: true,
      use_nmt: true,
      use_tts: true,
      use_semantic: false,
      use_tone: false,
      use_phonetic: true,
      use_lexicon: false,
      use_punctuation: true,
    });
    full.result(assign);
    expect((await view(placed.body['job_id'], 5000))['status']).toBe('finished');
  });

  it('two jobs without session ids never collide; a session keeps its node and counts its utterances', async () => {
    const pairs = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const placed = await submit({ src_lang: 'zh', tgt_lang: 'en', exclude_node_ids: [full.nodeId] });
      const assign = await core.nextAssign();
      expect(typeof assign['trace_id']).toBe('string');
      pairs.add(`${String(assign['session_id'])}:${String(assign['utterance_index'])}`);
      core.result(assign);
      await view(placed.body['job_id'], 5000);
    }
    expect(pairs.size).toBe(2);

    const session = `sess-${prefix}`;
    const seen: [unknown, unknown][] = [];
    for (let i = 0; i < 3; i++) {
      const placed = await submit({ src_lang: 'en', tgt_lang: 'zh', payload: { session_id: session } });
      expect(placed.status).toBe(201);
      const node = nodeOf(placed.body['node_id']);
      const assign = await node.nextAssign();
      seen.push([placed.body['node_id'], assign['utterance_index']]);
      expect(assign['session_id']).toBe(session);
      node.result(assign);
      await view(placed.body['job_id'], 5000);
    }
    expect(seen.map(([, index]) => index)).toEqual([0, 1, 2]);
    expect(new Set(seen.map(([node]) => node)).size).toBe(1);
  });

  it('asr_partial text reaches the client while the job runs, in order (GET and SSE), and stops at the result', async () => {
    const placed = await submit({
      src_lang: 'zh',
      tgt_lang: 'en',
      exclude_node_ids: [core.nodeId],
      payload: { enable_streaming_asr: true, partial_update_interval_ms: 1000, trace_id: 'trace-partials' },
    });
    const assign = await full.nextAssign();
    expect(assign['trace_id']).toBe('trace-partials'); // the caller's, tracing being off
    const events = await selector.api(`/v1/jobs/${String(placed.body['job_id'])}/events`);
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = events.text();
    full.partial(assign, '你');
    full.partial(assign, '你好');
    await waitFor(
      async () => ((await view(placed.body['job_id']))['partials'] as unknown[] | undefined)?.length === 2,
    );
    const running = await view(placed.body['job_id']);
    expect(running['status']).toBe('accepted');
    expect((running['partials'] as { text: string }[]).map((p) => p.text)).toEqual(['你', '你好']);
    full.partial(assign, '你好世界', true);
    await waitFor(async () => ((await view(placed.body['job_id']))['partials'] as unknown[]).length === 3);
    full.result(assign);
    full.partial(assign, 'too late'); // ignored, no error frame
    const stream = await text; // the stream ends with the result
    const kinds = [...stream.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(kinds.filter((k) => k !== 'status')).toEqual(['partial', 'partial', 'partial', 'result']);
    const partials = [...stream.matchAll(/^event: partial\ndata: (.*)$/gm)].map(
      (m) => (JSON.parse(m[1]!) as { text: string }).text,
    );
    expect(partials).toEqual(['你', '你好', '你好世界']);
    const done = await view(placed.body['job_id']);
    expect(done['status']).toBe('finished');
    expect((done['partials'] as unknown[]).length).toBe(3);
  });

  it('a job without a result within its timeout_ms gets job_cancel (no other node can take it: JOB_TIMEOUT)', async () => {
    const placed = await submit({
      src_lang: 'zh',
      tgt_lang: 'en',
      pipeline: { use_punctuation: true },
      timeout_ms: 1000,
    });
    expect(placed.status).toBe(201);
    const assign = await full.nextAssign();
    const cancel = await full.nextOfType('job_cancel', 10_000);
    expect(cancel).toMatchObject({ job_id: assign['job_id'], attempt_id: 1, reason: 'job_timeout' });
    const failed = await waitFor(async () => {
      const v = await view(placed.body['job_id']);
      return v['status'] === 'failed' && v;
    });
    expect(failed['error']).toMatchObject({ code: 'JOB_TIMEOUT' });
  });

  it("the client's DUPLICATE_JOB_ID refusal of a copy is not its verdict on the job: the job still finishes", async () => {
    const placed = await submit({ src_lang: 'en', tgt_lang: 'zh', exclude_node_ids: [full.nodeId] });
    const assign = await core.nextAssign();
    core.duplicate(assign, true);
    await new Promise((r) => setTimeout(r, 300));
    expect((await view(placed.body['job_id']))['status']).toBe('accepted');
    core.result(assign);
    expect(await view(placed.body['job_id'], 5000)).toMatchObject({ status: 'finished', attempt_id: 1 });
  });

  it('timeout_ms beyond SB_MAX_JOB_TIMEOUT_MS answers 400 naming the field', async () => {
    const res = await submit({ src_lang: 'zh', tgt_lang: 'en', timeout_ms: 300_001 });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'INVALID_MESSAGE', message: /^timeout_ms: / } });
  });
});
