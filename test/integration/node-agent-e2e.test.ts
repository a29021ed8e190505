import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NodeAgent } from '../../agent/node-agent.ts';
import { simulatedHandler, sleep } from '../../agent/simulated-job.ts';
import { registration, startAgent, stopAgents } from '../support/agent-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import {
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';

afterEach(stopAgents);

describe('NodeAgent end to end: selector → gateway → agent → result (gateway, worker, selector)', () => {
  const env = {
    SB_ACK_TIMEOUT_MS: '600',
    SB_JOB_TIMEOUT_MS: '1000',
    SB_REAPER_INTERVAL_MS: '200',
    SB_MAX_ATTEMPTS: '2',
  };
  let gw: TestGateway;
  let worker: TestWorker;
  let selector: TestSelector;
  let fast: NodeAgent;
  let stuck: NodeAgent;
  const stuckSignals: AbortSignal[] = [];

  interface JobView {
    status: string;
    node_id: string;
    attempts: { attempt_id: number; node_id: string; status: string; reason?: string }[];
    result?: Record<string, unknown>;
  }
  const view = async (jobId: string, waitMs = 0): Promise<JobView> =>
    (await (await selector.api(`/v1/jobs/${jobId}?wait_ms=${waitMs}`)).json()) as JobView;
  const submit = async (body: Record<string, unknown>): Promise<number> =>
    (
      await selector.api('/v1/jobs', {
        method: 'POST',
        body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', ...body }),
      })
    ).status;

  beforeAll(async () => {
    const prefix = uniquePrefix('agent-e2e');
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() }, env);
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() }, env);
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() }, env);
    fast = startAgent({
      gatewayUrls: [gw.ws],
      registration: registration('e2e-fast'),
      handler: simulatedHandler({ meanMs: 50, sigma: 0 }),
      heartbeatIntervalMs: 200,
    });
    stuck = startAgent({
      gatewayUrls: [gw.ws],
      registration: registration('e2e-stuck'),
      handler: async (_job, { signal, started }) => {
        stuckSignals.push(signal);
        started();
        await sleep(60_000, signal);
        return {};
      },
      heartbeatIntervalMs: 200,
    });
    await waitFor(
      async () => ((await (await selector.api('/v1/snapshot')).json()) as { nodes: number }).nodes === 2,
      { timeoutMs: 10_000 },
    );
    await waitFor(async () => (await submit({ dry_run: true, preferred_node_id: 'e2e-stuck' })) === 200);
  });
  afterAll(async () => {
    await Promise.all([fast.stop(0), stuck.stop(0)]);
    await selector.close();
    await worker.close();
    await gw.close();
  });

  it('a job placed by the selector runs on the agent; the simulated result is stored', async () => {
    expect(
      await submit({ job_id: 'e2e-1', preferred_node_id: 'e2e-fast', payload: { utterance_index: 7 } }),
    ).toBe(201);
    const v = await waitFor(async () => {
      const job = await view('e2e-1', 2000);
      return job.status === 'finished' && job;
    });
    expect(v.node_id).toBe('e2e-fast');
    expect(v.result).toMatchObject({
      job_id: 'e2e-1',
      attempt_id: 1,
      node_id: 'e2e-fast',
      success: true,
      utterance_index: 7,
      text_asr: '[simulated zh transcript #7]',
    });
    expect(fast.stats.jobs).toMatchObject({ received: 1, succeeded: 1 });
  });

  it('a job without a result in time: job_cancel aborts the handler (no result), the job fails over', async () => {
    expect(await submit({ job_id: 'e2e-2', preferred_node_id: 'e2e-stuck' })).toBe(201);
    await waitFor(() => stuck.stats.jobs.cancelled === 1, { timeoutMs: 10_000, message: 'job_cancel' });
    expect(stuckSignals[0]?.aborted).toBe(true);
    const v = await waitFor(
      async () => {
        const job = await view('e2e-2', 2000);
        return job.status === 'finished' && job;
      },
      { timeoutMs: 10_000 },
    );
    expect(v.attempts).toMatchObject([
      { attempt_id: 1, node_id: 'e2e-stuck' },
      { attempt_id: 2, node_id: 'e2e-fast', status: 'finished' },
    ]);
    expect(stuck.stats.jobs).toMatchObject({ received: 1, succeeded: 0, failed: 0, cancelled: 1 });
    expect(stuck.runningJobs).toBe(0);
  });
});
