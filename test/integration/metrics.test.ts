import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_INFO } from '../../shared/build-info.ts';
import { TestFleet } from '../support/fleet.ts';
import { frame } from '../support/node-fixtures.ts';
import { scrape, type TestGateway, type TestSelector, type TestWorker } from '../support/service-harness.ts';
import { TestStack } from '../support/test-stack.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';

/** ARCHITECTURE.md "Observability": every service exposes its metrics on /metrics. */
describe('Prometheus metrics of every service', () => {
  const prefix = uniquePrefix();
  let stack: TestStack;
  let gw: TestGateway;
  let worker: TestWorker;
  let selector: TestSelector;
  let fleet: TestFleet;

  beforeAll(async () => {
    stack = await TestStack.start(prefix);
    ({ gw, worker, selector } = stack);
    fleet = stack.track(await TestFleet.connect(gw.ws, ['m-1', 'm-2']));
    fleet.heartbeat(0, 1);
    fleet.heartbeat(1, 1);
    await stack.waitReady(['m-2'], 2);
    const placed = await selector.api('/v1/jobs', {
      method: 'POST',
      body: '{"job_id":"metrics-job-1","src_lang":"zh","tgt_lang":"en"}',
    });
    expect(placed.status).toBe(201);
    placedOn = ((await placed.json()) as { node_id: string }).node_id;
  });
  let placedOn = '';
  afterAll(() => stack.close());

  const metrics = (base: string) => `${base}/metrics`;

  it('gateway: heartbeat rate and latency, ws connections, event-loop lag', async () => {
    const url = metrics(gw.http);
    expect(await scrape(url, 'sb_heartbeats_total', { outcome: 'applied' })).toBeGreaterThanOrEqual(2);
    expect(await scrape(url, 'sb_heartbeat_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(await scrape(url, 'sb_ws_connections')).toBe(2);
    expect(await scrape(url, 'sb_registrations_total', { outcome: 'ok' })).toBe(2);
    expect(await (await fetch(url)).text()).toMatch(/^nodejs_eventloop_lag_p99_seconds\{/m);
  });

  it('worker: snapshot version, staleness, delta sizes, published nodes, queue depths', async () => {
    const url = worker.metrics;
    await waitFor(async () => (await scrape(url, 'sb_snapshot_published_nodes_total')) >= 2);
    expect(
      await scrape(url, 'sb_snapshot_version', { shard: String(gw.keys.shardOf('m-2')) }),
    ).toBeGreaterThan(0);
    expect(await scrape(url, 'sb_snapshot_lag_seconds_count')).toBeGreaterThan(0);
    expect(await scrape(url, 'sb_snapshot_delta_nodes_count')).toBeGreaterThan(0);
    expect(await (await fetch(url)).text()).toMatch(/^sb_queue_jobs\{[^}]*queue="snapshot-flush"/m);
  });

  it('every service: sb_build_info and /healthz carry the version and the Node.js version', async () => {
    const services = {
      gateway: gw.http,
      worker: worker.metrics.replace(/\/metrics$/, ''),
      selector: selector.url,
    };
    for (const [service, base] of Object.entries(services)) {
      const labels = { version: BUILD_INFO.version, node_version: process.version, service };
      expect(await scrape(metrics(base), 'sb_build_info', labels), service).toBe(1);
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({
        ok: true,
        status: 'ok',
        service,
        version: BUILD_INFO.version,
        node: process.version,
        pid: process.pid, // the services run in this test's process
      });
    }
  });

  it('selector: selection latency, jobs, reservation conflicts, replica staleness', async () => {
    const url = metrics(selector.url);
    expect(await scrape(url, 'sb_selection_duration_seconds_count')).toBe(1);
    expect(await scrape(url, 'sb_jobs_total', { outcome: 'placed' })).toBe(1);
    expect(await (await fetch(url)).text()).toMatch(/^sb_reservation_conflicts_total\{[^}]*\} 0$/m);
    expect(await scrape(url, 'sb_replica_lag_seconds_count')).toBeGreaterThan(0);
    expect(await scrape(url, 'sb_replica_nodes')).toBe(2);
  });

  it('selector: the fleet from its snapshot (nodes by status, slots, ready nodes per pool)', async () => {
    const url = metrics(selector.url);
    expect(await scrape(url, 'sb_nodes', { status: 'ready' })).toBe(2);
    expect(await scrape(url, 'sb_nodes', { status: 'offline' })).toBe(0);
    expect(await scrape(url, 'sb_nodes_unavailable', { reason: 'draining' })).toBe(0);
    expect(await scrape(url, 'sb_pool_ready_nodes', { pool: 'zh:en' })).toBe(2);
    expect(await scrape(url, 'sb_pools', { state: 'without_ready' })).toBe(0);
    // a reservation alone does not republish its node (issue 12): the node's next significant
    // heartbeat does, here one reporting a job running; the snapshot then holds that running job
    // and the (not yet acked) reservation, 2 slots used
    fleet.heartbeat(fleet.ids.indexOf(placedOn), 2, { running_jobs: 1 });
    await waitFor(async () => (await scrape(url, 'sb_slots', { state: 'used' })) === 2);
    const free = await scrape(url, 'sb_slots', { state: 'free' });
    const drained = await selector.api(`/v1/nodes/${placedOn}/drain`, { method: 'POST' });
    expect(drained.status).toBe(200);
    await waitFor(async () => (await scrape(url, 'sb_pool_ready_nodes', { pool: 'zh:en' })) === 1);
    expect(await scrape(url, 'sb_nodes_unavailable', { reason: 'draining' })).toBe(1);
    expect(await scrape(url, 'sb_nodes', { status: 'ready' }), 'draining is not a status').toBe(2);
    expect(await scrape(url, 'sb_slots', { state: 'free' })).toBeLessThan(free);
  });

  it('gateway: a result applied to the current attempt counts once, by status', async () => {
    const i = fleet.ids.indexOf(placedOn);
    const socket = fleet.sockets[i]!;
    const assign = await socket.nextOfType('job_assign');
    const result = { job_id: assign['job_id'], attempt_id: assign['attempt_id'], node_id: placedOn };
    socket.send(frame('job_result', { ...result, success: true }));
    await waitFor(
      async () => (await scrape(metrics(gw.http), 'sb_job_results_total', { status: 'finished' })) === 1,
    );
    socket.send(frame('job_result', { ...result, success: true })); // a repeat: not counted again
    const heartbeats = await scrape(metrics(gw.http), 'sb_heartbeats_total');
    fleet.heartbeat(i, 2); // after the repeat on the same socket
    await waitFor(async () => (await scrape(metrics(gw.http), 'sb_heartbeats_total')) > heartbeats);
    expect(await scrape(metrics(gw.http), 'sb_job_results_total', { status: 'finished' })).toBe(1);
  });
});
