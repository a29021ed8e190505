import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { JOIN_TOKEN, nodeToken, startTestGateway, type TestGateway } from '../support/service-harness.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import { TestSocket } from '../support/ws-client.ts';

describe('Redis stopped and restarted while nodes heartbeat', () => {
  let server: RedisServerHandle;
  let gw: TestGateway;

  beforeAll(async () => {
    // AOF so that the restarted server still knows the nodes, as a production Redis would.
    server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    gw = await startTestGateway(uniquePrefix(), { redisUrl: server.url });
  });
  afterAll(async () => {
    await gw.close();
    await server.destroy();
  });

  it('answers 503/SCHEDULER_DEPENDENCY_DOWN while down and recovers by itself', async () => {
    const id = 'outage-1';
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_register', registerBody({ node_id: id })));
    await socket.nextOfType('node_register_ack');
    const httpHeartbeat = (ts: number) =>
      fetch(`${gw.http}/v1/nodes/${id}/heartbeat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${nodeToken(id)}`, 'content-type': 'application/json' },
        body: JSON.stringify(heartbeatBody(id, { timestamp: ts })),
      });
    expect((await httpHeartbeat(1)).status).toBe(200);

    await server.stop();

    socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 2 })));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'SCHEDULER_DEPENDENCY_DOWN' });
    const down = await httpHeartbeat(3);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(await down.json()).toMatchObject({ error: { code: 'SCHEDULER_DEPENDENCY_DOWN' } });
    const reg = await fetch(`${gw.http}/v1/nodes/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${JOIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(registerBody({ node_id: 'outage-2' })),
    });
    expect(reg.status).toBe(503);
    expect((await fetch(`${gw.http}/readyz`)).status).toBe(503);
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);

    await server.restart();

    await waitFor(async () => (await httpHeartbeat(4)).status === 200, { timeoutMs: 15000 });
    expect((await fetch(`${gw.http}/readyz`)).status).toBe(200);
    socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 5 }, { cpu_percent: 77 })));
    const check = new Redis(server.url);
    try {
      const node = gw.keys.forNode(id).node(id);
      await waitFor(async () => (await check.hget(node, 'cpu')) === '77');
      expect(await check.hget(node, 'status')).toBe('ready');
    } finally {
      await check.quit();
    }
    await socket.close();
  });
});
