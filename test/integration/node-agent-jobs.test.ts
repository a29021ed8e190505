import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobHandler } from '../../agent/job-runner.ts';
import { sleep } from '../../agent/simulated-job.ts';
import {
  ack,
  agent,
  assign,
  controlledHandler,
  FakeGateway,
  nextEvent,
  registration,
  stopAgents,
} from '../support/agent-harness.ts';
import { waitFor } from '../support/redis.ts';

afterEach(stopAgents);

// The job path, against a tiny local gateway stand-in (test/support/agent-harness.ts): frames are
// fed by hand.

describe('NodeAgent job handling (local ws server)', () => {
  let fake: FakeGateway;
  beforeAll(async () => {
    fake = await FakeGateway.start();
  });
  afterAll(async () => {
    await stopAgents();
    await fake.close();
  });

  it('acks at once, relays started, and sends the handler result with the job ids', async () => {
    const { handler, seen, finish } = controlledHandler();
    const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-1'), handler });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const job = assign();
    conn.send(job);
    await conn.next((f) => f.type === 'job_started' && f['job_id'] === job.job_id);
    expect(a.runningJobs).toBe(1);
    expect(seen[0]!.job).toMatchObject({ job_id: job.job_id, audio: 'AAAA', audio_format: 'pcm16' });

    await finish(job.job_id, { text_asr: '你好', text_translated: 'hello', job_id: 'spoofed' });
    const result = await conn.next((f) => f.type === 'job_result');
    expect(conn.ofJob(job.job_id)).toEqual(['job_ack', 'job_started', 'job_result']);
    const ids = {
      job_id: job.job_id,
      attempt_id: 1,
      node_id: 'node-jobs-1',
      session_id: 's1',
      trace_id: 'trace-1',
    };
    expect(conn.frames.find((f) => f.type === 'job_ack')).toEqual({ type: 'job_ack', ...ids });
    expect(result).toMatchObject({
      ...ids,
      success: true,
      utterance_index: 7,
      text_asr: '你好',
      text_translated: 'hello',
    });
    expect(result['processing_time_ms']).toEqual(expect.any(Number));
    expect(a.runningJobs).toBe(0);
    expect(a.stats.jobs).toMatchObject({ received: 1, succeeded: 1, failed: 0 });
  });

  it('a handler that throws yields success:false with the error code and message', async () => {
    const handler: JobHandler = () =>
      Promise.reject(Object.assign(new Error('model crashed'), { code: 'ASR_FAILED' }));
    const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-2'), handler });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const job = assign();
    conn.send(job);
    const result = await conn.next((f) => f.type === 'job_result');
    expect(result).toMatchObject({
      job_id: job.job_id,
      success: false,
      error: { code: 'ASR_FAILED', message: 'model crashed' },
    });
    expect(conn.ofJob(job.job_id)).toEqual(['job_ack', 'job_result']);
    expect(a.stats.jobs.failed).toBe(1);
  });

  it('job_cancel aborts the handler and no result is sent for that attempt', async () => {
    const { handler, seen, finish } = controlledHandler();
    const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-3'), handler });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const cancelled = assign();
    const later = assign();
    conn.send(cancelled);
    await conn.next((f) => f.type === 'job_started' && f['job_id'] === cancelled.job_id);
    conn.send({ type: 'job_cancel', job_id: cancelled.job_id, reason: 'ack timeout' });
    await waitFor(() => seen[0]!.signal.aborted);
    expect((seen[0]!.signal.reason as { code?: string }).code).toBe('JOB_CANCELLED');

    // frames are handled in order: once the later job's result is in, the cancelled one is settled
    conn.send(later);
    await finish(later.job_id, { text_asr: 'x' });
    await conn.next((f) => f.type === 'job_result' && f['job_id'] === later.job_id);
    expect(conn.ofJob(cancelled.job_id)).toEqual(['job_ack', 'job_started']);
    expect(a.runningJobs).toBe(0);
    expect(a.stats.jobs).toMatchObject({ cancelled: 1, succeeded: 1 });
  });

  it('acks a duplicate assignment again without running it twice, and declines jobs while draining', async () => {
    const { handler, seen, finish } = controlledHandler();
    const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-4'), handler });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const outcomes: string[] = [];
    a.on('job_assign', (job, outcome) => outcomes.push(`${job.job_id}:${outcome}`));
    const job = assign();
    conn.send(job);
    conn.send(job);
    conn.send({ type: 'node_control', command: 'drain', reason: 'maintenance' });
    const refused = assign();
    conn.send(refused);
    await waitFor(() => outcomes.length === 3);
    expect(outcomes).toEqual([
      `${job.job_id}:accepted`,
      `${job.job_id}:duplicate`,
      `${refused.job_id}:declined`,
    ]);
    expect(a.draining).toBe(true);
    expect(seen).toHaveLength(1);
    await finish(job.job_id, {});
    await conn.next((f) => f.type === 'job_result');
    expect(conn.ofJob(job.job_id)).toEqual(['job_ack', 'job_started', 'job_ack', 'job_result']);
    expect(conn.ofJob(refused.job_id)).toEqual([]);
  });

  it('reports running jobs in heartbeats, and keeps a result made while disconnected for the next registration', async () => {
    const { handler, finish } = controlledHandler();
    const id = 'node-jobs-5';
    const a = agent({
      gatewayUrls: [fake.url],
      registration: registration(id),
      handler,
      heartbeatIntervalMs: 50,
    });
    const n = fake.connections.length + 1;
    const conn = await fake.registered(n);
    await waitFor(() => a.registered);
    const job = assign();
    conn.send(job);
    await conn.next(
      (f) =>
        f.type === 'node_heartbeat' && (f['resource_usage'] as { running_jobs: number }).running_jobs === 1,
    );

    // the gateway drops the socket; the next one is not acked until the job has finished
    fake.onRegister = () => null;
    try {
      conn.ws.close(1001, 'going away');
      const next = await fake.registered(n + 1);
      expect(next.authorization).toBe(`Bearer node-token-of-${id}`); // the node token from the first ack
      await finish(job.job_id, { text_asr: 'late' });
      await waitFor(() => a.stats.jobs.succeeded === 1);
      expect(conn.ofJob(job.job_id)).toEqual(['job_ack', 'job_started']);
      expect(next.ofJob(job.job_id)).toEqual([]);

      next.send(ack(id));
      const result = await next.next((f) => f.type === 'job_result');
      expect(result).toMatchObject({ job_id: job.job_id, node_id: id, success: true, text_asr: 'late' });
      expect(a.stats.registrations).toBe(2);
    } finally {
      fake.onRegister = (_n, f) => ack(String(f['node_id']));
    }
  });

  it('retries a registration answered RATE_LIMITED, on the same socket', async () => {
    fake.registers = 0;
    fake.onRegister = (n, f) =>
      n === 1 ? { type: 'error', code: 'RATE_LIMITED', message: 'slow down' } : ack(String(f['node_id']));
    try {
      const a = agent({ gatewayUrls: [fake.url], registration: registration('node-jobs-6') });
      const conn = await fake.connection(fake.connections.length + 1);
      await waitFor(() => a.registered);
      expect(conn.frames.filter((f) => f.type === 'node_register')).toHaveLength(2);
      expect(a.stats).toMatchObject({ connects: 1, registrations: 1, errors: { RATE_LIMITED: 1 } });
    } finally {
      fake.onRegister = (_n, f) => ack(String(f['node_id']));
    }
  });

  it('node_control shutdown stops the agent, closing with 1000; a job still running gets a failure result', async () => {
    const handler: JobHandler = async (_job, { signal, started }) => {
      started();
      await sleep(60_000, signal);
      return {};
    };
    const a = agent({
      gatewayUrls: [fake.url],
      registration: registration('node-jobs-7'),
      handler,
      shutdownGraceMs: 100,
    });
    const conn = await fake.registered(fake.connections.length + 1);
    await waitFor(() => a.registered);
    const job = assign();
    conn.send(job);
    await conn.next((f) => f.type === 'job_started');
    const stopped = nextEvent(a, 'stopped');
    conn.send({ type: 'node_control', command: 'shutdown', reason: 'test' });
    await stopped;
    expect(await conn.closed).toBe(1000);
    expect(await conn.next((f) => f.type === 'job_result')).toMatchObject({
      job_id: job.job_id,
      success: false,
      error: { code: 'NODE_SHUTTING_DOWN' },
    });
    expect(a.lifecycle).toBe('stopped');
  });
});
