import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { NODE_FRAME_TYPES, type NodeFrameType } from '../../shared/protocol/node-messages.ts';
import {
  FRAME_SCHEMAS,
  FUZZ_RUNS,
  GARBAGE_RUNS,
  hostileValue,
  mutant,
  redisState,
  validFrame,
  verdict,
} from '../support/fuzz-oracle.ts';
import { frame } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { inspectClient, JOIN_TOKEN, startTestGateway, type TestGateway } from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Issue 11 deliverable 3, node WebSocket: every frame type, mutated one field at a time, and
 * garbage. Rule: an invalid frame gets one `error` frame (a 4xx code, the message naming the
 * field) and changes nothing in Redis; nothing is ever INTERNAL, the socket stays open.
 */
const CLIENT_CODES = new Set([
  'INVALID_MESSAGE',
  'INVALID_CAPABILITY_SCHEMA',
  'NO_GPU_AVAILABLE',
  'NODE_ID_MISMATCH',
]);

describe('fuzz: node WebSocket frames', () => {
  const prefix = uniquePrefix('fuzz-ws');
  const nodeId = 'fuzz-ws-node';
  let gw: TestGateway;
  let redis: Redis | Cluster;
  let socket: TestSocket;
  let before: Record<string, string>;

  beforeAll(async () => {
    gw = await startTestGateway(
      prefix,
      { redisUrl: redisUrl() },
      { SB_WS_RATE_LIMIT: '100000', SB_WS_MAX_QUEUED: '10000' },
    );
    redis = inspectClient(gw.config);
    socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_register', validFrame('node_register', nodeId)));
    await socket.nextOfType('node_register_ack');
    socket.send(frame('node_heartbeat', validFrame('node_heartbeat', nodeId)));
    await new Promise((r) => setTimeout(r, 200));
    before = await redisState(redis, prefix);
  });
  afterAll(async () => {
    await socket.close();
    await gw.close();
    await redis.quit();
  });

  /** Sends `text` and returns the error frame it got. */
  async function answer(text: string) {
    socket.send(text);
    return socket.nextOfType('error', 3000);
  }

  it.each(NODE_FRAME_TYPES.map((t) => [t]))(
    '%s: one mutated field → an error frame naming it, nothing written',
    async (type) => {
      const base = validFrame(type, nodeId);
      await fc.assert(
        fc.asyncProperty(mutant(base), async ({ body }) => {
          const text = frame(type, body);
          const expected = verdict(FRAME_SCHEMAS[type], text, 'frame');
          fc.pre(expected.invalid);
          const error = await answer(text);
          expect(CLIENT_CODES.has(String(error['code'])), JSON.stringify(error)).toBe(true);
          const message = String(error['message']);
          expect(
            expected.names.some((name) => message.startsWith(name)),
            `${message} | ${expected.names.join(' ')}`,
          ).toBe(true);
        }),
        FUZZ_RUNS,
      );
      expect(await redisState(redis, prefix)).toEqual(before);
    },
  );

  it('garbage: any JSON or text, any `type` → an INVALID_MESSAGE error frame, nothing written', async () => {
    const garbage = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 4 }),
      fc.record({ type: hostileValue }).map((v) => JSON.stringify(v)),
      fc
        .record({ type: fc.constantFrom(...NODE_FRAME_TYPES), node_id: hostileValue, job_id: hostileValue })
        .map((v) => JSON.stringify(v)),
      fc.integer({ min: 65, max: 3000 }).map((d) => `${'{"type":'.repeat(d)}1${'}'.repeat(d)}`),
    );
    await fc.assert(
      fc.asyncProperty(garbage, async (text) => {
        let value: unknown = null;
        try {
          value = JSON.parse(text);
        } catch {
          // not JSON: must be refused
        }
        const type = (value as { type?: unknown } | null)?.type;
        if (typeof type === 'string' && Object.hasOwn(FRAME_SCHEMAS, type))
          fc.pre(verdict(FRAME_SCHEMAS[type as NodeFrameType], text, 'frame').invalid);
        const error = await answer(text);
        expect(error['code']).toBe('INVALID_MESSAGE');
      }),
      GARBAGE_RUNS,
    );
    socket.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'INVALID_MESSAGE' });
    expect(await redisState(redis, prefix)).toEqual(before);
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
  });
});
