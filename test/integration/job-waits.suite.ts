import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import {
  inspectClient,
  JOIN_TOKEN,
  scrape,
  startTestGateway,
  startTestSelector,
  startTestWorker,
  testConfig,
  type RedisTarget,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';
import { TestSocket, type Frame } from '../support/ws-client.ts';

interface JobView {
  job_id: string;
  status: string;
  partials?: { text: string }[];
  result?: Record<string, unknown>;
}

/**
 * Results pushed, not polled (ARCHITECTURE.md "Waiting for a job"), through real services and a
 * raw WebSocket node that answers when the test says so. The selectors' fallback re-read is 60 s
 * (longer than any wait here) unless a test lowers it: an answer before the wait ends can only
 * come from the job shard's announcement.
 */
export function describeJobWaits(label: string, target: () => RedisTarget): void {
  describe(`waiting for a job: pushed announcements (${label})`, () => {
    let gw: TestGateway;
    let worker: TestWorker;
    let selector: TestSelector;
    let node: TestSocket;
    const nodeId = `wait-node-${label}`;
    let prefix: string;
    let n = 0;

    const submit = async (): Promise<string> => {
      const jobId = `wait-${label}-${++n}`;
      const res = await selector.api('/v1/jobs', {
        method: 'POST',
        body: JSON.stringify({ job_id: jobId, src_lang: 'zh', tgt_lang: 'en', preferred_node_id: nodeId }),
      });
      expect(res.status).toBe(201);
      return jobId;
    };
    /** Places a job and acks it on the node: the job is `accepted` and waits for its result. */
    const accepted = async (): Promise<Frame> => {
      const jobId = await submit();
      const assign = await node.next((f) => f.type === 'job_assign' && f['job_id'] === jobId);
      node.send(frame('job_ack', { job_id: jobId, attempt_id: assign['attempt_id'], node_id: nodeId }));
      await waitFor(async () => (await view(selector, jobId)).status === 'accepted');
      return assign;
    };
    const result = (assign: Frame, extra: Record<string, unknown> = {}) =>
      node.send(
        frame('job_result', {
          job_id: assign['job_id'],
          attempt_id: assign['attempt_id'],
          node_id: nodeId,
          success: true,
          text_translated: 'hello',
          ...extra,
        }),
      );
    const partial = (assign: Frame, text: string) =>
      node.send(frame('asr_partial', { job_id: assign['job_id'], node_id: nodeId, text, is_final: false }));
    const waiters = (s: TestSelector) => scrape(`${s.url}/metrics`, 'sb_job_waiters');

    beforeAll(async () => {
      prefix = uniquePrefix(`waits-${label}`);
      const env = { SB_JOB_EVENTS_FALLBACK_MS: '60000' };
      gw = await startTestGateway(prefix, target(), env);
      worker = await startTestWorker(prefix, target(), env);
      selector = await startTestSelector(prefix, target(), env);
      node = await TestSocket.open(gw.ws, JOIN_TOKEN);
      node.send(frame('node_register', registerBody({ node_id: nodeId, max_concurrent_jobs: 50 })));
      await node.nextOfType('node_register_ack');
      node.send(frame('node_heartbeat', heartbeatBody(nodeId)));
      await waitFor(
        async () =>
          (
            await selector.api('/v1/jobs', {
              method: 'POST',
              body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', dry_run: true }),
            })
          ).status === 200,
        { timeoutMs: 15_000 },
      );
    });
    afterAll(async () => {
      await node?.close();
      await selector?.close();
      await worker?.close();
      await gw?.close();
    });

    it("a waiting GET answers the result once the node's job_result arrives, well within its wait", async () => {
      const assign = await accepted();
      const jobId = String(assign['job_id']);
      const started = Date.now();
      const answer = view(selector, jobId, 20_000);
      await waitFor(async () => (await waiters(selector)) === 1);
      result(assign);
      const done = await answer;
      expect(done.status).toBe('finished');
      expect(done.result).toMatchObject({ text_translated: 'hello', success: true });
      // the fallback is 60 s and the wait 20 s: only the announcement can answer this early
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(
        await scrape(`${selector.url}/metrics`, 'sb_job_wakeups_total', { cause: 'event' }),
      ).toBeGreaterThan(0);
      await waitFor(async () => (await waiters(selector)) === 0);
    });

    it('the event stream delivers every partial and the result as they are announced', async () => {
      const assign = await accepted();
      const jobId = String(assign['job_id']);
      const res = await selector.api(`/v1/jobs/${jobId}/events`);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let stream = '';
      const until = async (pattern: RegExp) => {
        while (!pattern.test(stream)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`stream ended before ${String(pattern)}: ${stream}`);
          stream += value;
        }
      };
      await until(/event: status\ndata: \{"status":"accepted"/);
      partial(assign, '你');
      await until(/"text":"你"/); // each partial arrives before the next is sent: pushed
      partial(assign, '你好');
      await until(/"text":"你好"/);
      result(assign);
      await until(/event: result\n/);
      await reader.cancel().catch(() => undefined);
      const kinds = [...stream.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
      expect(kinds).toEqual(['status', 'partial', 'partial', 'status', 'result']);
      expect(stream).toMatch(/event: status\ndata: \{"status":"finished"/);
    });

    it('a change whose announcement is lost is seen by the fallback re-read', async () => {
      const fallback = await startTestSelector(prefix, target(), { SB_JOB_EVENTS_FALLBACK_MS: '300' });
      const inspect = inspectClient(testConfig(prefix, target()));
      try {
        const assign = await accepted();
        const jobId = String(assign['job_id']);
        const answer = view(fallback, jobId, 20_000);
        await waitFor(async () => (await waiters(fallback)) === 1);
        // finished behind the scripts' back: no announcement at all
        await inspect.hset(gw.keys.job(jobId), 'status', 'finished', 'finished_at', Date.now());
        expect((await answer).status).toBe('finished');
        expect(
          await scrape(`${fallback.url}/metrics`, 'sb_job_wakeups_total', { cause: 'fallback' }),
        ).toBeGreaterThan(0);
        result(assign); // frees the node's slot (the record is terminal already)
      } finally {
        await inspect.quit();
        await fallback.close();
      }
    });

    it('sheds waiters beyond SB_MAX_JOB_WAITERS (429) and frees the place of a client that left', async () => {
      const limited = await startTestSelector(prefix, target(), {
        SB_MAX_JOB_WAITERS: '2',
        SB_JOB_EVENTS_FALLBACK_MS: '60000',
      });
      try {
        const assign = await accepted();
        const jobId = String(assign['job_id']);
        const leaving = new AbortController();
        const first = view(limited, jobId, 20_000);
        const second = limited
          .api(`/v1/jobs/${jobId}?wait_ms=20000`, { signal: leaving.signal })
          .catch((err: unknown) => err);
        await waitFor(async () => (await waiters(limited)) === 2);

        const shed = await limited.api(`/v1/jobs/${jobId}?wait_ms=20000`);
        expect(shed.status).toBe(429);
        expect(shed.headers.get('retry-after')).toBe('1');
        expect(((await shed.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
        expect(await scrape(`${limited.url}/metrics`, 'sb_job_waiters_shed_total')).toBe(1);
        // a read that does not wait is never shed
        expect((await limited.api(`/v1/jobs/${jobId}`)).status).toBe(200);

        leaving.abort();
        expect(await second).toBeInstanceOf(Error);
        await waitFor(async () => (await waiters(limited)) === 1);
        const third = view(limited, jobId, 20_000);
        await waitFor(async () => (await waiters(limited)) === 2);

        result(assign);
        expect((await first).status).toBe('finished');
        expect((await third).status).toBe('finished');
        await waitFor(async () => (await waiters(limited)) === 0);
      } finally {
        await limited.close();
      }
    });
  });
}

async function view(selector: TestSelector, jobId: string, waitMs = 0): Promise<JobView> {
  const res = await selector.api(`/v1/jobs/${jobId}${waitMs > 0 ? `?wait_ms=${waitMs}` : ''}`);
  expect(res.status).toBe(200);
  return (await res.json()) as JobView;
}
