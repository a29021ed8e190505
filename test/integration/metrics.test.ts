import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { BUILD_INFO } from '../../shared/build-info.ts';
import { checkpointEntry, TestFleet } from '../support/fleet.ts';
import {
  scrape,
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';

/** ARCHITECTURE.md "Observability": every service exposes its metrics on /metrics. */
describe('Prometheus metrics of every service', () => {
  const prefix = uniquePrefix();
  let gw: TestGateway;
  let worker: TestWorker;
  let selector: TestSelector;
  let fleet: TestFleet;
  let redis: Redis;

  beforeAll(async () => {
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() });
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() });
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() });
    redis = new Redis(redisUrl());
    fleet = await TestFleet.connect(gw.ws, ['m-1', 'm-2']);
    fleet.heartbeat(0, 1);
    fleet.heartbeat(1, 1);
    await waitFor(async () => (await checkpointEntry(redis, gw.keys, 'm-2'))?.status === 'ready');
    await waitFor(
      async () => ((await (await selector.api('/v1/snapshot')).json()) as { nodes: number }).nodes === 2,
    );
    expect(
      (await selector.api('/v1/jobs', { method: 'POST', body: '{"src_lang":"zh","tgt_lang":"en"}' })).status,
    ).toBe(201);
  });
  afterAll(async () => {
    await fleet.close();
    await selector.close();
    await worker.close();
    await gw.close();
    await redis.quit();
  });

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
    expect(await scrape(url, 'sb_snapshot_staleness_seconds_count')).toBeGreaterThan(0);
    expect(await scrape(url, 'sb_snapshot_delta_nodes_count')).toBeGreaterThan(0);
    expect(await scrape(url, 'sb_pool_index_total', { outcome: 'changed' })).toBe(2);
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
    expect(await scrape(url, 'sb_replica_staleness_seconds_count')).toBeGreaterThan(0);
    expect(await scrape(url, 'sb_replica_nodes')).toBe(2);
  });
});
