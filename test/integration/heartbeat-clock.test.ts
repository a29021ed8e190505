import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import {
  inspectClient,
  JOIN_TOKEN,
  scrape,
  startTestGateway,
  type TestGateway,
} from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Issue 11 defect 4: one heartbeat stamped an hour ahead (an NTP correction does this) made
 * every later one "stale", silently ignored, until the node went offline while heartbeating.
 */
describe('heartbeat timestamps that jump', () => {
  let gw: TestGateway;
  let redis: Redis | Cluster;
  const nodeHash = (id: string) => gw.keys.forNode(id).node(id);
  const metrics = () => `${gw.http}/metrics`;

  beforeAll(async () => {
    gw = await startTestGateway(
      uniquePrefix(),
      { redisUrl: redisUrl() },
      { SB_HEARTBEAT_REORDER_MS: '2000' },
    );
    redis = inspectClient(gw.config);
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  async function registered(id: string): Promise<TestSocket> {
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_register', registerBody({ node_id: id })));
    await socket.nextOfType('node_register_ack');
    return socket;
  }

  it('after a timestamp an hour ahead, the next heartbeats still apply (outcome clock_jump once)', async () => {
    const id = 'clock-jump-ws';
    const socket = await registered(id);
    socket.send(
      frame('node_heartbeat', heartbeatBody(id, { timestamp: Date.now() + 3_600_000 }, { cpu_percent: 10 })),
    );
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '10');
    const jumps = await scrape(metrics(), 'sb_heartbeats_total', { outcome: 'clock_jump' });
    socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: Date.now() }, { cpu_percent: 20 })));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '20');
    socket.send(
      frame('node_heartbeat', heartbeatBody(id, { timestamp: Date.now() + 1 }, { cpu_percent: 30 })),
    );
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '30');
    expect(await scrape(metrics(), 'sb_heartbeats_total', { outcome: 'clock_jump' })).toBe(jumps + 1);
    expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);
    await socket.close();
  });

  it('over HTTP too: 200 and applied after a future timestamp', async () => {
    const id = 'clock-jump-http';
    const post = (path: string, body: unknown) =>
      fetch(`${gw.http}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${JOIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/v1/nodes/register', registerBody({ node_id: id }))).status).toBe(201);
    const ahead = heartbeatBody(id, { timestamp: Date.now() + 3_600_000 }, { cpu_percent: 11 });
    expect((await post(`/v1/nodes/${id}/heartbeat`, ahead)).status).toBe(200);
    const now = heartbeatBody(id, { timestamp: Date.now() }, { cpu_percent: 22 });
    expect((await post(`/v1/nodes/${id}/heartbeat`, now)).status).toBe(200);
    expect(await redis.hget(nodeHash(id), 'cpu')).toBe('22');
  });

  it('a reordered heartbeat is counted stale on WebSocket and still keeps the node alive', async () => {
    const id = 'reordered-ws';
    const socket = await registered(id);
    const t = Date.now();
    socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: t }, { cpu_percent: 50 })));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '50');
    const seen = Number(await redis.zscore(gw.keys.forNode(id).live, id));
    const stale = await scrape(metrics(), 'sb_heartbeats_total', { outcome: 'stale' });
    await new Promise((r) => setTimeout(r, 20));
    socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: t - 1000 }, { cpu_percent: 90 })));
    await waitFor(
      async () => (await scrape(metrics(), 'sb_heartbeats_total', { outcome: 'stale' })) === stale + 1,
    );
    expect(await redis.hget(nodeHash(id), 'cpu')).toBe('50');
    expect(Number(await redis.zscore(gw.keys.forNode(id).live, id))).toBeGreaterThan(seen);
    expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);
    await socket.close();
  });
});
