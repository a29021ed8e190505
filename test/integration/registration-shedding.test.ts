import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { frame, registerBody } from '../support/node-fixtures.ts';
import { uniquePrefix } from '../support/redis.ts';
import { JOIN_TOKEN, startTestGateway, type TestGateway } from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * A WebSocket registration storm is worked through in arrival order, shed only past a deadline,
 * and a shed node comes back (issue 13): a node_register beyond SB_MAX_INFLIGHT waits up to
 * SB_WS_REGISTER_WAIT_MS for a slot; past that it gets RATE_LIMITED and its socket, which has no
 * node, is closed with 1013 (try again later) — the lingua client ignores error frames and
 * reconnects on a close; a registration still in flight when SB_WS_REGISTER_TIMEOUT_MS passes is
 * not closed with 4408 but answered. Redis is held with CLIENT PAUSE, so its own server.
 */
describe('registration shedding', () => {
  let server: RedisServerHandle;
  let redis: Redis;
  let gw: TestGateway;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    gw = await startTestGateway(
      uniquePrefix('shed'),
      { redisUrl: server.url },
      {
        SB_MAX_INFLIGHT: '1',
        SB_WS_REGISTER_WAIT_MS: '200',
        SB_WS_REGISTER_TIMEOUT_MS: '300',
        SB_REDIS_COMMAND_TIMEOUT_MS: '5000',
      },
    );
  });
  afterAll(async () => {
    await gw?.close();
    redis?.disconnect();
    await server?.destroy();
  });

  it('a register beyond capacity for longer than its wait: RATE_LIMITED, closed 1013; the reconnect registers; the slow one is answered', async () => {
    const slow = await TestSocket.open(gw.ws, JOIN_TOKEN);
    const shed = await TestSocket.open(gw.ws, JOIN_TOKEN);
    // the first registration holds the one in-flight slot past the register timeout (300 ms)
    await redis.call('CLIENT', 'PAUSE', '800', 'WRITE');
    slow.send(frame('node_register', registerBody({ node_id: 'shed-slow' })));
    await new Promise((r) => setTimeout(r, 50));
    shed.send(frame('node_register', registerBody({ node_id: 'shed-again' })));
    expect((await shed.nextOfType('error'))['code']).toBe('RATE_LIMITED');
    expect(await shed.closed).toMatchObject({ code: 1013 });

    // in flight when its register timeout passed: answered, not closed with 4408
    expect((await slow.nextOfType('node_register_ack'))['node_id']).toBe('shed-slow');
    await new Promise((r) => setTimeout(r, 400));
    expect(slow.ws.readyState).toBe(slow.ws.OPEN);

    // the shed node reconnects and registers
    const back = await TestSocket.open(gw.ws, JOIN_TOKEN);
    back.send(frame('node_register', registerBody({ node_id: 'shed-again' })));
    expect((await back.nextOfType('node_register_ack'))['node_id']).toBe('shed-again');
    await Promise.all([slow.close(), back.close()]);
  });

  it('a storm beyond capacity waits its turn: every register answered, none shed (default wait)', async () => {
    const storm = await startTestGateway(
      uniquePrefix('storm'),
      { redisUrl: server.url },
      { SB_MAX_INFLIGHT: '1', SB_REDIS_COMMAND_TIMEOUT_MS: '5000' },
    );
    const sockets = await Promise.all(
      Array.from({ length: 30 }, () => TestSocket.open(storm.ws, JOIN_TOKEN)),
    );
    try {
      // one slot, and Redis held for 400 ms: 29 registrations wait behind the first
      await redis.call('CLIENT', 'PAUSE', '400', 'WRITE');
      sockets.forEach((s, i) => s.send(frame('node_register', registerBody({ node_id: `storm-${i}` }))));
      const acks = await Promise.all(sockets.map((s) => s.nextOfType('node_register_ack')));
      expect(acks.map((a) => a['node_id'])).toEqual(sockets.map((_, i) => `storm-${i}`));
      expect(sockets.every((s) => s.ws.readyState === s.ws.OPEN)).toBe(true);
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await storm.close();
    }
  });
});
