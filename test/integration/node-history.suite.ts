import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import {
  decodeNodeHistory,
  HISTORY_FIELDS,
  NodeAdminStore,
  type NodeHistoryEntry,
} from '../../shared/store/node-history.ts';
import {
  NodeShardStore,
  type HeartbeatWrite,
  type RegistrationWrite,
} from '../../shared/store/node-shard.ts';
import { registrationWrite, TEST_NODE_POLICY } from '../support/node-fixtures.ts';
import { uniquePrefix } from '../support/redis.ts';
import { testConfig, type RedisTarget } from '../support/service-harness.ts';

/**
 * A node's history of status changes (lua/includes/node-history.lua, shared/store/node-history.ts),
 * written by the scripts that make the changes, read back through the admin store.
 */
export function describeNodeHistory(label: string, target: () => RedisTarget): void {
  describe(`node history (${label})`, () => {
    let redis: RedisClient;
    let keys: KeyBuilder;
    let store: NodeShardStore;
    let admin: NodeAdminStore;
    const noWork = { requestFlush: async () => {} };
    const policy = { ...TEST_NODE_POLICY, unhealthyHeartbeats: 2 };

    beforeAll(async () => {
      const config = testConfig(uniquePrefix('hist'), target());
      keys = new KeyBuilder(config.prefix, config.shards);
      redis = createRedisClient(config, createLogger('test', 'silent'), { name: 'test', mode: 'fail-fast' });
      await waitUntilReady(redis);
      store = new NodeShardStore(redis, keys, noWork, policy, createLogger('test', 'silent'));
      admin = new NodeAdminStore(redis, keys, 100);
    });
    afterAll(async () => {
      store.close();
      await redis.quit();
    });

    let ts = Date.now();
    const beat = (w: RegistrationWrite, healthy = true): Promise<unknown> =>
      store.heartbeat({
        nodeId: w.nodeId,
        timestamp: ++ts,
        cpu: 20,
        gpu: 30,
        gpuMem: null,
        mem: 50,
        running: 0,
        anyReady: healthy,
        svc: w.parts.svc,
        lang: w.parts.lang,
        models: null,
        cached: false,
      } satisfies HeartbeatWrite);
    const history = async (id: string) =>
      (await admin.live(id)).history.map(({ status, reason, by }) =>
        by ? [status, reason, by] : [status, reason],
      );

    it('records registration, heartbeats that change the status, closes, silence, drains, quarantine and revocation', async () => {
      const w = registrationWrite('hist-node-1');
      const before = Date.now();
      await store.register(w, false, { by: 'node', conn: 'ws' });
      await beat(w); // registering → ready
      await beat(w); // no change: nothing recorded
      await beat(w, false);
      await beat(w, false); // 2 unhealthy in a row → degraded
      await beat(w); // → ready
      const epoch = await store.register(w, false, { by: 'node', conn: 'ws' });
      expect(epoch).toMatchObject({ kind: 'registered' });
      await store.markOffline(w.nodeId, (epoch as { epoch: number }).epoch); // the socket closed
      await beat(w); // back
      await store.markOffline(w.nodeId, '', Date.now() + 1); // the reaper: silent
      await beat(w);
      await admin.drain(w.nodeId, true, 'ops team,1'); // label sanitised
      await admin.drain(w.nodeId, true, 'ops'); // no change: not recorded
      await admin.drain(w.nodeId, false, 'admin');
      const k = keys.forNode(w.nodeId);
      await redis.recordNodeFault(
        k.node(w.nodeId),
        k.dirty,
        w.nodeId,
        Date.now(),
        60_000,
        1,
        1000,
        10_000,
        'node_error',
      );
      await admin.revoke(w.nodeId, 'blocked', 'admin');

      expect(await history(w.nodeId)).toEqual(
        [
          ['registering', 'registered'],
          ['ready', 'heartbeat'],
          ['degraded', 'unhealthy_heartbeats'],
          ['ready', 'heartbeat'],
          ['registering', 'registered'],
          ['offline', 'connection_closed'],
          ['ready', 'heartbeat'],
          ['offline', 'missed_heartbeats'],
          ['ready', 'heartbeat'],
          ['draining', 'drained', 'opsteam1'],
          ['undrained', 'undrained', 'admin'],
          ['quarantined', 'node_error'],
          ['offline', 'revoked', 'admin'],
        ].reverse(),
      );
      const live = await admin.live(w.nodeId);
      for (const e of live.history) {
        expect(e.at).toBeGreaterThanOrEqual(before);
        expect(e.at).toBeLessThanOrEqual(Date.now());
      }
      // newest first, times never going backwards
      const times = live.history.map((e) => e.at);
      expect([...times].sort((a, b) => b - a)).toEqual(times);
    });

    it('keeps the last 26-30 changes (fewer naming operators) in chunks of at most 64 bytes, oldest dropped', async () => {
      const w = registrationWrite('hist-node-2');
      await store.register(w, false, { by: 'node', conn: 'ws' });
      for (let i = 0; i < 40; i++) await admin.drain(w.nodeId, i % 2 === 0, 'ops');
      const k = keys.forNode(w.nodeId);
      const chunks = await redis.hmget(k.node(w.nodeId), ...HISTORY_FIELDS);
      for (const chunk of chunks) expect(chunk === null || chunk.length <= 64).toBe(true);
      const entries = (await admin.live(w.nodeId)).history;
      // 13-byte entries: 4 to a chunk, 6 chunks, the oldest partly refilled
      expect(entries.length).toBeGreaterThanOrEqual(21);
      expect(entries.length).toBeLessThanOrEqual(24);
      // the newest is the 40th drain call (i = 39: undrain); the registration fell off
      expect(entries[0]).toMatchObject({ status: 'undrained', by: 'ops' });
      expect(entries.some((e: NodeHistoryEntry) => e.reason === 'registered')).toBe(false);
    });

    it('costs a steady node one field of about 21 bytes: registered, then ready', async () => {
      const w = registrationWrite('hist-node-3');
      await store.register(w, false, { by: 'node', conn: 'ws' });
      for (let i = 0; i < 5; i++) await beat(w);
      const k = keys.forNode(w.nodeId);
      const chunks = await redis.hmget(k.node(w.nodeId), ...HISTORY_FIELDS);
      expect(chunks[0]).toHaveLength(21);
      expect(chunks.slice(1)).toEqual([null, null, null, null, null]);
    });

    it('decodes unknown codes as unknown and skips malformed entries', () => {
      expect(decodeNodeHistory(['00000001zz,bad', null])).toEqual([
        { at: 1, status: 'unknown', reason: 'unknown' },
      ]);
    });
  });
}
