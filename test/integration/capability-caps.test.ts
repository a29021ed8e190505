import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { checkpointEntry } from '../support/fleet.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import {
  inspectClient,
  JOIN_TOKEN,
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Issue 11 defect 3: one registration with `any_to_any` over hundreds of codes made tens of
 * thousands of pools, blew the pool-index job's stack (L=400) and a selector's heap (L=1,000),
 * and its pool entries stayed 24 h after the node went. Now: capped at registration, the
 * maximum is indexed and served, and an offline node leaves its pools at once.
 */
describe('capability caps, end to end', () => {
  let gw: TestGateway;
  let worker: TestWorker;
  let selector: TestSelector;
  let redis: Redis | Cluster;
  const codes = (n: number) => Array.from({ length: n }, (_, i) => `x${i}`);
  const languageCapabilities = (n: number) => ({
    asr_languages: codes(n),
    tts_languages: codes(n),
    nmt_capabilities: [{ model_id: 'm2m', languages: codes(n), rule: 'any_to_any' }],
  });
  const poolCount = async (id: string) => (await checkpointEntry(redis, gw.keys, id))?.pools.length ?? 0;

  beforeAll(async () => {
    const prefix = uniquePrefix('caps');
    const env = { SB_MAX_MESSAGE_BYTES: '1048576' };
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() }, env);
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() }, env);
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() }, env);
    redis = inspectClient(gw.config);
  });
  afterAll(async () => {
    await selector.close();
    await worker.close();
    await gw.close();
    await redis.quit();
  });

  async function connect(id: string, n: number): Promise<TestSocket> {
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    const caps = languageCapabilities(n);
    socket.send(frame('node_register', registerBody({ node_id: id, language_capabilities: caps })));
    await socket.nextOfType('node_register_ack');
    socket.send(frame('node_heartbeat', heartbeatBody(id, { language_capabilities: caps })));
    return socket;
  }

  it('refuses L=200 and L=400 any_to_any naming the field, and writes nothing', async () => {
    for (const n of [200, 400]) {
      const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
      const id = `caps-refused-${n}`;
      socket.send(
        frame('node_register', registerBody({ node_id: id, language_capabilities: languageCapabilities(n) })),
      );
      const error = await socket.nextOfType('error');
      expect(error).toMatchObject({ code: 'INVALID_MESSAGE' });
      expect(String(error['message'])).toMatch(/^language_capabilities\.asr_languages: Too big/);
      expect(await redis.exists(gw.keys.forNode(id).node(id))).toBe(0);
      await socket.close();
    }
  });

  it('the maximum (64 codes: 4,032 pairs, 4,096 pools) is indexed and served; offline leaves the pools at once, back rejoins', async () => {
    const id = 'caps-max';
    const k = gw.keys.forNode(id);
    let socket = await connect(id, 64);
    await waitFor(async () => (await poolCount(id)) === 64 * 63 + 64, { timeoutMs: 20_000 });
    await waitFor(async () => (await checkpointEntry(redis, gw.keys, id))?.status === 'ready');
    // the selector serves it from its replica: a dry run picks it for x3→x60
    await waitFor(async () => {
      const res = await selector.api('/v1/jobs', {
        method: 'POST',
        body: JSON.stringify({ src_lang: 'x3', tgt_lang: 'x60', dry_run: true }),
      });
      return res.status === 200 && ((await res.json()) as { node_id?: string }).node_id === id;
    });

    await socket.close(); // offline: out of every pool, long before SB_NODE_RETENTION_MS
    await waitFor(async () => (await poolCount(id)) === 0, { timeoutMs: 20_000 });
    expect(await redis.exists(k.pool('x3:x60'), k.pools)).toBe(0); // no pool sets (issue 13)

    socket = await connect(id, 64); // back: in its pools again
    await waitFor(async () => (await poolCount(id)) === 64 * 63 + 64, { timeoutMs: 20_000 });
    await socket.close();
  });
});
