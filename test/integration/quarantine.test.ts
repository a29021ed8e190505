import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { checkpointEntry, TestFleet } from '../support/fleet.ts';
import { frame } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import {
  scrape,
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';

/**
 * Issue 11 deliverable 5: a node that fails, or lets time out, the jobs it accepts is kept out
 * of selection for a back-off, with the reason in the breakdown and in GET /v1/nodes/:id, and
 * comes back by itself; a success starts its count over.
 */
describe('quarantine of failing nodes (gateway, worker, selector)', () => {
  const prefix = uniquePrefix();
  const env = {
    SB_QUARANTINE_FAULTS: '2',
    SB_QUARANTINE_WINDOW_MS: '30000',
    SB_QUARANTINE_BASE_MS: '1500',
    SB_QUARANTINE_MAX_MS: '5000',
    SB_ACK_TIMEOUT_MS: '400',
    SB_REAPER_INTERVAL_MS: '100',
    SB_MAX_ATTEMPTS: '1',
  };
  let gw: TestGateway;
  let worker: TestWorker;
  let selector: TestSelector;
  let redis: Redis;
  let fleet: TestFleet;

  beforeAll(async () => {
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() }, env);
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() }, env);
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() }, env);
    redis = new Redis(redisUrl());
    fleet = await TestFleet.connect(gw.ws, ['q-fail', 'q-silent'], { max_concurrent_jobs: 8 });
    fleet.heartbeat(0, 1);
    fleet.heartbeat(1, 1);
    for (const id of ['q-fail', 'q-silent'])
      await waitFor(async () => (await checkpointEntry(redis, gw.keys, id))?.status === 'ready');
  });
  afterAll(async () => {
    await fleet.close();
    await selector.close();
    await worker.close();
    await gw.close();
    await redis.quit();
  });

  const post = async (body: Record<string, unknown>) => {
    const res = await selector.api('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', ...body }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const node = async (id: string) =>
    (
      (await (await selector.api(`/v1/nodes/${id}`)).json()) as {
        live: {
          quarantine: { active: boolean; reason: string; level: number; faults: number; until: number };
        };
      }
    ).live.quarantine;
  /** A job on `id` (the other node excluded), answered by `answer` once assigned. */
  async function jobOn(id: string, answer: ((jobId: string, attempt: number) => void) | null) {
    const other = id === 'q-fail' ? 'q-silent' : 'q-fail';
    const placed = await post({ preferred_node_id: id, exclude_node_ids: [other] });
    expect(placed.status, JSON.stringify(placed.body)).toBe(201);
    const jobId = placed.body['job_id'] as string;
    const socket = fleet.sockets[fleet.ids.indexOf(id)]!;
    const assign = await socket.next((f) => f.type === 'job_assign' && f['job_id'] === jobId);
    answer?.(jobId, assign['attempt_id'] as number);
    return jobId;
  }
  const fail = (id: string, error: Record<string, unknown>) => (jobId: string, attempt: number) => {
    const socket = fleet.sockets[fleet.ids.indexOf(id)]!;
    socket.send(frame('job_ack', { job_id: jobId, attempt_id: attempt, node_id: id }));
    socket.send(
      frame('job_result', { job_id: jobId, attempt_id: attempt, node_id: id, success: false, error }),
    );
  };
  const status = async (jobId: string) =>
    ((await (await selector.api(`/v1/jobs/${jobId}`)).json()) as { status: string }).status;

  it('failures the client caused do not count; two node failures quarantine it, with the reason everywhere', async () => {
    const duplicate = {
      code: 'PROCESSING_ERROR',
      message: 'DUPLICATE_UTTERANCE_INDEX: another job already accepted',
    };
    for (let i = 0; i < 2; i++) {
      const jobId = await jobOn('q-fail', fail('q-fail', duplicate));
      await waitFor(async () => (await status(jobId)) === 'failed');
    }
    expect(await node('q-fail')).toMatchObject({ active: false, faults: 0, level: 0 });

    const oom = { code: 'PROCESSING_ERROR', message: 'CUDA out of memory' };
    for (let i = 0; i < 2; i++) {
      const jobId = await jobOn('q-fail', fail('q-fail', oom));
      await waitFor(async () => (await status(jobId)) === 'failed');
    }
    expect(await node('q-fail')).toMatchObject({ active: true, reason: 'job_failed', level: 1, faults: 0 });
    expect(await scrape(`${gw.http}/metrics`, 'sb_node_quarantines_total', { reason: 'job_failed' })).toBe(1);

    // the selector's replica sees it: out of selection, under its own reason
    await waitFor(
      async () => (await checkpointEntry(redis, gw.keys, 'q-fail'))?.quarantineReason === 'job_failed',
    );
    await waitFor(async () => (await post({ exclude_node_ids: ['q-silent'], dry_run: true })).status === 503);
    const refused = await post({ exclude_node_ids: ['q-silent'] });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({
      error: { code: 'NO_AVAILABLE_NODE' },
      breakdown: { rejected: { quarantined: 1 }, samples: { quarantined: ['q-fail'] } },
    });
  });

  it('comes back by itself when the back-off ends; a success starts its count and back-off over', async () => {
    const { until } = await node('q-fail');
    await waitFor(() => Date.now() > until, { timeoutMs: 5000 });
    const jobId = await jobOn('q-fail', (job, attempt) => {
      const socket = fleet.sockets[0]!;
      socket.send(frame('job_ack', { job_id: job, attempt_id: attempt, node_id: 'q-fail' }));
      socket.send(
        frame('job_result', { job_id: job, attempt_id: attempt, node_id: 'q-fail', success: true }),
      );
    });
    await waitFor(async () => (await status(jobId)) === 'finished');
    await waitFor(async () => (await node('q-fail')).level === 0);
    expect(await node('q-fail')).toMatchObject({ active: false, faults: 0 });
  });

  it('timeouts the worker finds late (it was not running) are not blamed on the node', async () => {
    await worker.close();
    const jobs = [await jobOn('q-silent', null), await jobOn('q-silent', null)]; // never acked
    // past the ack deadline and the tolerance (3 x SB_REAPER_INTERVAL_MS + 1 s) with no worker
    await new Promise((r) => setTimeout(r, 2_000));
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() }, env);
    for (const jobId of jobs) await waitFor(async () => (await status(jobId)) === 'failed');
    expect(await node('q-silent')).toMatchObject({ active: false, faults: 0, level: 0 });
  });

  it('a node that lets accepted jobs time out is quarantined too (the worker counts the timeouts)', async () => {
    for (let i = 0; i < 2; i++) {
      const jobId = await jobOn('q-silent', null); // assigned, never acked
      await waitFor(async () => (await status(jobId)) === 'failed');
    }
    await waitFor(async () => (await node('q-silent')).active);
    expect(await node('q-silent')).toMatchObject({ reason: 'ack_timeout', level: 1 });
    expect(await scrape(worker.metrics, 'sb_node_quarantines_total', { reason: 'ack_timeout' })).toBe(1);
  });
});
