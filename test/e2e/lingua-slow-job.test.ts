import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinguaReplayNode } from '../support/lingua-node.ts';
import { JOIN_TOKEN } from '../support/service-harness.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import { TestStack } from '../support/test-stack.ts';
import type { Frame } from '../support/ws-client.ts';

/**
 * The lingua client never acks and answers when the work is done (its configuration budgets
 * 20–30 s for large-model ASR). With the default deadlines (SB_ACK_TIMEOUT_MS 10 s,
 * SB_JOB_TIMEOUT_MS 60 s) and a fast liveness tick, a job answered after 20 s finishes on its
 * first attempt: delivery was its acceptance, no job_cancel, no failover.
 */
describe('lingua compatibility: a job answered after 20 s with no ack (gateway, worker, selector)', () => {
  const prefix = uniquePrefix();
  let stack: TestStack;
  let node: LinguaReplayNode;

  beforeAll(async () => {
    stack = await TestStack.start(prefix, { workerEnv: { SB_REAPER_INTERVAL_MS: '200' } });
    node = stack.track(await LinguaReplayNode.connect(stack.gw.ws, JOIN_TOKEN, 'core'));
    await node.register();
    node.heartbeat();
    await waitFor(async () => {
      const listed = (await (await stack.selector.api('/v1/nodes')).json()) as {
        nodes: { status: string }[];
      };
      return listed.nodes.filter((n) => n.status === 'ready').length === 1;
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('finishes with its job_result, 20 s after delivery, on attempt 1', { timeout: 60_000 }, async () => {
    const res = await stack.selector.api('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', pipeline: { use_semantic: true } }),
    });
    expect(res.status).toBe(201);
    const assign = await node.nextAssign();
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 20_000));
    // still alive: its heartbeat every 15 s
    node.heartbeat(true);
    node.result(assign);
    const view = await waitFor(async () => {
      const v = (await (await stack.selector.api(`/v1/jobs/${String(assign['job_id'])}`)).json()) as Frame;
      return v['status'] === 'finished' && v;
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(20_000);
    expect(view).toMatchObject({ attempt_id: 1, attempts: [{ attempt_id: 1, status: 'finished' }] });
    expect(node.assigns).toHaveLength(1);
    await expect(node.nextOfType('job_cancel', 200)).rejects.toThrow(/no matching frame/);
    expect(node.errors).toEqual([]);
  });
});
