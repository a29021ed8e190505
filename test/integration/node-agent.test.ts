import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { FleetSimulator } from '../../agent/fleet-simulator.ts';
import { backoffDelay, TimerQueue, withJitter } from '../../agent/timers.ts';
import { agent, nextEvent, registration, stopAgents } from '../support/agent-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { inspectClient, JOIN_TOKEN, startTestGateway, type TestGateway } from '../support/service-harness.ts';

afterEach(stopAgents);

describe('NodeAgent against a real gateway', () => {
  let gw: TestGateway;
  let redis: Redis | Cluster;
  let seq = 0;
  const nextId = () => `agent-node-${++seq}`;
  const status = (id: string) => redis.hget(gw.keys.forNode(id).node(id), 'status');

  beforeAll(async () => {
    gw = await startTestGateway(uniquePrefix('agent'), { redisUrl: redisUrl() });
    redis = inspectClient(gw.config);
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  it('registers with the join token and becomes ready in Redis', async () => {
    const id = nextId();
    const a = agent({ gatewayUrls: [gw.ws], registration: registration(id) });
    await waitFor(async () => (await status(id)) === 'ready');
    expect(a.nodeId).toBe(id);
    expect(a.registered).toBe(true);
    expect(a.connected).toBe(true);
    expect(a.stats).toMatchObject({ connects: 1, registrations: 1, errors: {} });
    expect(a.stats.heartbeats).toBeGreaterThanOrEqual(1);
    expect(await redis.hmget(gw.keys.forNode(id).node(id), 'cpu', 'gpu_pct', 'mem', 'running')).toEqual([
      '20',
      '30',
      '50',
      '0',
    ]);
  });

  it('heartbeats on its interval with strictly increasing timestamps the gateway applies', async () => {
    const id = nextId();
    const a = agent({ gatewayUrls: [gw.ws], registration: registration(id), heartbeatIntervalMs: 100 });
    const beats: { timestamp: number; at: number }[] = [];
    a.on('heartbeat', ({ timestamp }) => beats.push({ timestamp, at: performance.now() }));
    await waitFor(() => beats.length >= 8, { timeoutMs: 5000 });
    const stamps = beats.map((b) => b.timestamp);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]!).toBeGreaterThan(stamps[i - 1]!);
    const gaps = beats.slice(2).map((b, i) => b.at - beats[i + 1]!.at);
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
    expect(mean).toBeGreaterThan(70);
    expect(mean).toBeLessThan(250);
    const last = stamps[stamps.length - 1]!;
    await waitFor(async () => Number(await redis.hget(gw.keys.forNode(id).node(id), 'hb_ts')) >= last);
    expect(a.stats.errors).toEqual({});
  });

  it('moves to the next gateway URL when its gateway goes away, re-registering with the same id', async () => {
    const first = await startTestGateway(gw.config.prefix, { redisUrl: redisUrl() });
    let firstClosed = false;
    try {
      // No node_id: the gateway generates one; the agent keeps it (and its node token) from then on.
      const a = agent({ gatewayUrls: [first.ws, gw.ws], heartbeatIntervalMs: 100 });
      const [firstAck] = (await nextEvent(a, 'registered')) as [{ nodeId: string; url: string }];
      expect(firstAck.url).toBe(first.ws);
      const id = firstAck.nodeId;
      expect(id).toMatch(/^node-[0-9a-f]{8}$/);
      await waitFor(async () => (await status(id)) === 'ready');

      const again = nextEvent(a, 'registered');
      await first.close();
      firstClosed = true;
      const [ack] = (await again) as [{ nodeId: string; url: string; again: boolean }];
      expect(ack).toMatchObject({ nodeId: id, url: gw.ws, again: true });
      expect(a.gatewayUrl).toBe(gw.ws);
      expect(a.stats.disconnects).toBe(1);
      const hbTs = Number(await redis.hget(gw.keys.forNode(id).node(id), 'hb_ts'));
      await waitFor(async () => Number(await redis.hget(gw.keys.forNode(id).node(id), 'hb_ts')) > hbTs, {
        message: 'heartbeats through the second gateway',
      });
      expect(await status(id)).toBe('ready');
    } finally {
      if (!firstClosed) await first.close();
    }
  });

  it('re-registers when the gateway answers NOT_REGISTERED (node record deleted)', async () => {
    const id = nextId();
    const a = agent({ gatewayUrls: [gw.ws], registration: registration(id), heartbeatIntervalMs: 100 });
    await waitFor(async () => (await status(id)) === 'ready');
    await redis.del(gw.keys.forNode(id).node(id));
    await waitFor(() => a.stats.registrations === 2, { message: 'second registration' });
    expect(a.stats.errors['NOT_REGISTERED']).toBeGreaterThanOrEqual(1);
    expect(a.stats.connects).toBe(1); // on the same socket
    await waitFor(async () => (await status(id)) === 'ready');
  });

  it('stop() closes cleanly: the gateway marks the node offline at once and nothing reconnects', async () => {
    const id = nextId();
    const a = agent({ gatewayUrls: [gw.ws], registration: registration(id) });
    await waitFor(async () => (await status(id)) === 'ready');
    const stopped = nextEvent(a, 'stopped');
    await a.stop();
    await stopped;
    expect(a.lifecycle).toBe('stopped');
    expect(a.connected).toBe(false);
    expect(a.state).toBe('disconnected');
    await waitFor(async () => (await status(id)) === 'offline');
    expect(a.stats).toMatchObject({ connects: 1, disconnects: 1, registrations: 1 });
    await a.stop(); // idempotent
  });

  it('the fleet simulator brings up 50 nodes that all become ready, then stops them all', async () => {
    const prefix = `fleet${seq++}`;
    const lines: string[] = [];
    const fleet = new FleetSimulator({
      gatewayUrls: [gw.ws],
      token: JOIN_TOKEN,
      nodes: 50,
      idPrefix: prefix,
      heartbeatIntervalMs: 500,
      rampUpMs: 250,
      summaryIntervalMs: 200,
      print: (line) => lines.push(line),
      seed: 7,
    });
    const ids = fleet.agents.map((a) => a.nodeId!);
    expect(new Set(ids).size).toBe(50);
    try {
      await fleet.start();
      await waitFor(
        async () => {
          const pipeline = redis.pipeline();
          for (const id of ids) pipeline.hget(gw.keys.forNode(id).node(id), 'status');
          const statuses = ((await pipeline.exec()) ?? []).map(([, s]) => s);
          return statuses.every((s) => s === 'ready');
        },
        { timeoutMs: 15_000, message: 'all 50 ready' },
      );
      expect(fleet.registered).toBe(50);
      // capabilities differ by profile: the pools index several language pairs
      expect(new Set(fleet.shapes.map((shape) => shape.profile.name)).size).toBeGreaterThan(1);
      await waitFor(() => lines.some((l) => l.includes('nodes 50/50 registered')));
    } finally {
      await fleet.stop();
    }
    const s = fleet.summary();
    expect(s).toMatchObject({ nodes: 50, registered: 0, unregistered: 0, errors: {} });
    await waitFor(async () => (await status(ids[0]!)) === 'offline');
  });
});

describe('agent timing (pure, alongside the integration tests it supports)', () => {
  it('TimerQueue runs callbacks in due order on one timer and honours cancel', async () => {
    const q = new TimerQueue();
    const fired: string[] = [];
    q.after(300, () => fired.push('c'));
    q.after(10, () => fired.push('a'));
    const cancelled = q.after(250, () => fired.push('x'));
    q.after(250, () => fired.push('b'));
    q.after(10, () => q.after(5, () => fired.push('a2')));
    cancelled.cancel();
    expect(q.size).toBe(4);
    await waitFor(() => fired.length === 4);
    expect(fired).toEqual(['a', 'a2', 'b', 'c']);
    expect(q.size).toBe(0);
    q.close();
    q.after(0, () => fired.push('after close'));
    expect(q.size).toBe(0);
  });

  it('backoff is full-jitter exponential and capped; jitter stays within its fraction', () => {
    expect(backoffDelay(0, 250, 10_000, () => 0.999)).toBe(249);
    expect(backoffDelay(3, 250, 10_000, () => 0.5)).toBe(1000);
    expect(backoffDelay(50, 250, 10_000, () => 0.999)).toBe(9990);
    expect(backoffDelay(5, 250, 10_000, () => 0)).toBe(0);
    expect(withJitter(1000, 0.1, () => 0)).toBe(900);
    expect(withJitter(1000, 0.1, () => 0.999999)).toBe(1100);
  });
});
