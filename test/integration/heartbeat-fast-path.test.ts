import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { clientFrames } from '../support/lingua-node.ts';
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
 * The WebSocket heartbeat fast path (services/gateway/heartbeat-memo.ts: frames scanned, not
 * parsed, when their capabilities are byte-identical to the last accepted heartbeat's) against
 * a real gateway and Redis, with the lingua client's recorded frames: every heartbeat is
 * written with its own figures, a changed capability goes through validation and reaches
 * Redis, and a bad frame after fast ones gets the full path's error naming the field.
 */
describe('heartbeat fast path', () => {
  let gw: TestGateway;
  let redis: Redis | Cluster;
  const nodeHash = (id: string) => gw.keys.forNode(id).node(id);
  const applied = () => scrape(`${gw.http}/metrics`, 'sb_heartbeats_total', { outcome: 'applied' });

  beforeAll(async () => {
    gw = await startTestGateway(uniquePrefix(), { redisUrl: redisUrl() });
    redis = inspectClient(gw.config);
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  it('applies every heartbeat with its own figures, capability changes included', async () => {
    const profile = clientFrames.profiles.core;
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(JSON.stringify(profile['node_register']));
    const ack = await socket.nextOfType('node_register_ack');
    const id = ack['node_id'] as string;
    const base = { ...profile['node_heartbeat'], node_id: id } as Record<string, unknown>;
    const usage = base['resource_usage'] as Record<string, unknown>;
    const before = await applied();
    let ts = Date.now();
    const send = (cpu: number, extra: Record<string, unknown> = {}) =>
      socket.send(
        JSON.stringify({
          ...base,
          timestamp: ++ts,
          resource_usage: { ...usage, cpu_percent: cpu },
          ...extra,
        }),
      );

    // the first takes the full path and primes the memo; the next ones are scanned
    for (const cpu of [10.377358490566039, 12.5, 0, 99.99999999999999, 37]) {
      send(cpu);
      await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === String(cpu));
    }
    expect(await applied()).toBe(before + 5);

    // a capability that changed: validated and written (its digest moves), then scanned again
    const digest = await redis.hget(nodeHash(id), 'dg_svc');
    const byType = (base['capability_by_type'] as Record<string, unknown>[]).map((c) =>
      c['type'] === 'tts' ? { ...c, ready: false } : c,
    );
    send(41, { capability_by_type: byType });
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '41');
    expect(await redis.hget(nodeHash(id), 'dg_svc')).not.toBe(digest);
    send(42, { capability_by_type: byType });
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '42');
    expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);

    // bad input after scanned frames: the full path's error, naming the field; nothing written
    send(101, { capability_by_type: byType });
    const error = await socket.nextOfType('error');
    expect(error['code']).toBe('INVALID_MESSAGE');
    expect(String(error['message'])).toMatch(/^resource_usage\.cpu_percent/);
    socket.send(JSON.stringify({ ...base, node_id: 'node-someone-else', timestamp: ++ts }));
    expect((await socket.nextOfType('error'))['code']).toBe('NODE_ID_MISMATCH');
    expect(await redis.hget(nodeHash(id), 'cpu')).toBe('42');
    expect(await applied()).toBe(before + 7);

    // Redis lost its scripts: the scanned heartbeat's NOSCRIPT is answered by loading it again
    await (redis as Redis).script('FLUSH');
    send(43, { capability_by_type: byType });
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '43');
    send(44, { capability_by_type: byType });
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '44');
    expect(await applied()).toBe(before + 9);
    expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);
    await socket.close();
  });
});
