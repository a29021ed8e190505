import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeAgent } from '../../agent/node-agent.ts';
import type { RegistrationBody } from '../../agent/protocol.ts';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { CLOSE_NOT_REGISTERED, REREGISTER_GRACE_MS } from '../../services/gateway/socket-limits.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import { JOIN_TOKEN, startTestGateway, type TestGateway } from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Issue 11, Redis back without its data: a node connected through it is forgotten, and a node
 * agent that ignores `error` frames (the lingua client does) would heartbeat unseen forever.
 * The gateway closes such a socket with 4404 when it does not register again within
 * REREGISTER_GRACE_MS, so the agent reconnects and registers. Its own Redis (FLUSHALL).
 */
describe('a registered node whose record Redis lost', () => {
  let server: RedisServerHandle;
  let redis: Redis;
  let gw: TestGateway;
  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    gw = await startTestGateway(uniquePrefix('lost'), { redisUrl: server.url });
  });
  afterAll(async () => {
    await gw?.close();
    redis?.disconnect();
    await server?.destroy();
  });

  async function registered(id: string): Promise<TestSocket> {
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_register', registerBody({ node_id: id })));
    await socket.nextOfType('node_register_ack');
    return socket;
  }

  it('that only heartbeats (ignores the error) is closed with 4404 after the grace', async () => {
    const socket = await registered('lost-1');
    await redis.flushall();
    socket.send(frame('node_heartbeat', heartbeatBody('lost-1')));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'NOT_REGISTERED' });
    const closed = await socket.closed;
    expect(closed.code).toBe(CLOSE_NOT_REGISTERED);
    expect(closed.reason).toContain('node_register');
  });

  it('that registers again on the same socket is kept', async () => {
    const socket = await registered('lost-2');
    await redis.flushall();
    socket.send(frame('node_heartbeat', heartbeatBody('lost-2')));
    await socket.nextOfType('error');
    socket.send(frame('node_register', registerBody({ node_id: 'lost-2' })));
    await socket.nextOfType('node_register_ack');
    const outcome = await Promise.race([
      socket.closed.then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('open'), REREGISTER_GRACE_MS + 1000)),
    ]);
    expect(outcome).toBe('open');
    await socket.close();
  });

  it('a socket that has not registered yet is not closed for its early heartbeat', async () => {
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_heartbeat', heartbeatBody('early-1'))); // ignored (PROTOCOL.md)
    const outcome = await Promise.race([
      socket.closed.then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('open'), REREGISTER_GRACE_MS + 1000)),
    ]);
    expect(outcome).toBe('open');
    await socket.close();
  });

  it('the project’s node agent is registered again by itself', async () => {
    const id = 'lost-agent';
    const agent = new NodeAgent({
      gatewayUrls: [gw.ws],
      token: JOIN_TOKEN,
      registration: registerBody({ node_id: id }) as RegistrationBody,
      heartbeat: () => ({ resource_usage: { cpu_percent: 20, mem_percent: 50 } }),
      heartbeatIntervalMs: 200,
      backoff: { baseMs: 20, maxMs: 200 },
      shutdownGraceMs: 500,
    });
    agent.start();
    try {
      const node = gw.keys.forNode(id).node(id);
      await waitFor(async () => (await redis.hget(node, 'status')) === 'ready', { timeoutMs: 10_000 });
      await redis.flushall();
      await waitFor(async () => (await redis.hget(node, 'status')) === 'ready', {
        timeoutMs: REREGISTER_GRACE_MS + 8000,
        message: 'the agent registered again',
      });
    } finally {
      await agent.stop(0);
    }
  });
});
