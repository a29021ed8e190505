import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { capabilityPart } from '../../shared/capability-digest.ts';
import { toSwitchboardError } from '../../shared/errors.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { DerivedWorkQueues } from '../../shared/queues.ts';
import { createRedisClient, waitForRedis, type RedisClient } from '../../shared/redis-client.ts';
import {
  NodeShardStore,
  type HeartbeatWrite,
  type RegistrationWrite,
} from '../../shared/store/node-shard.ts';
import { CommandDeadlines, encodeEvalsha, PrebuiltCommand } from '../../shared/store/script-command.ts';
import { registrationWrite, TEST_NODE_POLICY } from '../support/node-fixtures.ts';
import { uniquePrefix } from '../support/redis.ts';
import { testConfig } from '../support/service-harness.ts';

/**
 * The node shard's typed store (shared/store/node-shard.ts) on its own real redis-server (it
 * flushes the script cache and pauses clients): named results for every return code, the
 * prebuilt EVALSHA byte for byte equal to what ioredis sends, NOSCRIPT recovery, deadlines.
 */
describe('node shard store', () => {
  let server: RedisServerHandle;
  let redis: RedisClient;
  let queueRedis: RedisClient;
  let queues: DerivedWorkQueues;
  let store: NodeShardStore;
  let keys: KeyBuilder;
  let inspect: Redis;
  const log = createLogger('store-test', 'silent');
  const policy = TEST_NODE_POLICY;

  beforeAll(async () => {
    server = await startRedisServer();
    const config = testConfig(
      uniquePrefix('store'),
      { redisUrl: server.url },
      { SB_REDIS_COMMAND_TIMEOUT_MS: '300' },
    );
    keys = new KeyBuilder(config.prefix, config.shards);
    redis = createRedisClient(config, log, { name: 'store-test', mode: 'fail-fast' });
    queueRedis = createRedisClient(config, log, { name: 'store-test-queues', mode: 'fail-fast' });
    await waitForRedis([redis, queueRedis]);
    queues = new DerivedWorkQueues(queueRedis, keys, log);
    store = new NodeShardStore(redis, keys, queues, policy, log);
    inspect = new Redis(server.url);
  });
  afterAll(async () => {
    store.close();
    await queues.close();
    await Promise.allSettled([redis.quit(), queueRedis.quit(), inspect.quit()]);
    await server.destroy();
  });

  function heartbeat(
    w: RegistrationWrite,
    timestamp: number,
    over: Partial<HeartbeatWrite> = {},
  ): HeartbeatWrite {
    return {
      nodeId: w.nodeId,
      timestamp,
      cpu: 20,
      gpu: 30,
      gpuMem: null,
      mem: 50,
      running: 0,
      anyReady: true,
      svc: w.parts.svc,
      lang: w.parts.lang,
      models: null,
      cached: true,
      ...over,
    };
  }

  it('names every result: registered, id_taken, applied, stale, clock_jump, not_registered', async () => {
    const w = registrationWrite('store-node-1');
    const first = await store.register(w, true, { by: 'node', conn: 'ws' });
    expect(first).toMatchObject({ kind: 'registered', isNew: true });
    expect(await store.register(w, true, { by: 'node', conn: 'ws' })).toEqual({ kind: 'id_taken' });
    const t = Date.now();
    expect(await store.heartbeat(heartbeat(w, t))).toEqual({
      kind: 'applied',
      status: 'ready',
      capabilityChanged: false,
    });
    expect(await store.heartbeat(heartbeat(w, t - 500))).toEqual({ kind: 'stale', status: 'ready' });
    expect(await store.heartbeat(heartbeat(w, t - 60_000))).toMatchObject({ kind: 'clock_jump' });
    expect(await store.heartbeat(heartbeat(registrationWrite('store-ghost'), t))).toEqual({
      kind: 'not_registered',
    });
    const k = keys.forNode(w.nodeId);
    expect(await inspect.hmget(k.node(w.nodeId), 'status', 'cpu', 'gpu_pct', 'gpu_mem')).toEqual([
      'ready',
      '20',
      '30',
      null, // not stored: nothing reads it
    ]);
  });

  it('sends the blobs when Redis holds other digests than the cached ones', async () => {
    const w = registrationWrite('store-node-2');
    await store.register(w, false, { by: 'node', conn: 'ws' });
    const changed = capabilityPart({ asr_languages: ['fr'] });
    const outcome = await store.heartbeat(heartbeat(w, Date.now(), { lang: changed }));
    expect(outcome).toMatchObject({ kind: 'applied', capabilityChanged: true });
    const k = keys.forNode(w.nodeId);
    expect(await inspect.hget(k.node(w.nodeId), 'dg_lang')).toBe(changed.digest);
    expect(await inspect.hget(k.caps, changed.digest)).toBe(changed.blob);
  });

  it('markOffline, recordNodeError and releaseConnection answer by the epoch and the record', async () => {
    const w = registrationWrite('store-node-3');
    const reg = await store.register(w, false, { by: 'node', conn: 'ws' });
    if (reg.kind !== 'registered') throw new Error(reg.kind);
    expect(await store.recordNodeError(w.nodeId, { code: 'E_X', message: 'boom' })).toBe(true);
    expect(await store.recordNodeError('store-nobody', { code: 'E_X', message: 'boom' })).toBe(false);
    expect(await store.releaseConnection(w.nodeId, reg.epoch + 1)).toBe(false);
    expect(await store.markOffline(w.nodeId, reg.epoch + 1)).toBe(false);
    expect(await store.markOffline(w.nodeId, reg.epoch)).toBe(true);
    expect(await inspect.hget(keys.forNode(w.nodeId).node(w.nodeId), 'status')).toBe('offline');
  });

  it('the prebuilt EVALSHA carries exactly the KEYS and ARGV ioredis would send', async () => {
    const lua = 'return {KEYS, ARGV}';
    const sha = (await inspect.script('LOAD', lua)) as string;
    const keysAndArgs = [
      '{t}:k1',
      '{t}:k2',
      '',
      'node-ü-中',
      0,
      7,
      1023,
      1024,
      12.5,
      -3,
      1e21,
      'a|b',
      'x'.repeat(3000),
    ];
    const command = new PrebuiltCommand(encodeEvalsha(sha, 2, keysAndArgs), null, null);
    const viaPrebuilt = await redis.sendCommand(command);
    const viaIoredis = await inspect.evalsha(sha, 2, ...keysAndArgs);
    expect(viaPrebuilt).toEqual(viaIoredis);
    const [keysSeen, argsSeen] = viaPrebuilt as [string[], string[]];
    expect(keysSeen).toEqual(['{t}:k1', '{t}:k2']);
    expect(argsSeen.slice(0, 9)).toEqual([
      '',
      'node-ü-中',
      '0',
      '7',
      '1023',
      '1024',
      '12.5',
      '-3',
      '1000000000000000000000',
    ]);
  });

  it('recovers from NOSCRIPT (Redis lost its script cache) through the defined command', async () => {
    const w = registrationWrite('store-node-4');
    await store.register(w, false, { by: 'node', conn: 'ws' });
    await inspect.script('FLUSH');
    expect(await store.heartbeat(heartbeat(w, Date.now()))).toMatchObject({ kind: 'applied' });
    expect(await store.heartbeat(heartbeat(w, Date.now() + 1))).toMatchObject({ kind: 'applied' });
  });

  it('a stalled Redis: the deadline sweep rejects in-flight heartbeats as ioredis would, SCHEDULER_DEPENDENCY_DOWN', async () => {
    const w = registrationWrite('store-node-5');
    await store.register(w, false, { by: 'node', conn: 'ws' });
    await inspect.client('PAUSE', 1500, 'ALL');
    const started = performance.now();
    const err = await store.heartbeat(heartbeat(w, Date.now())).then(
      () => null,
      (e: unknown) => e,
    );
    const waited = performance.now() - started;
    expect((err as Error).message).toBe('Command timed out');
    expect(toSwitchboardError(err).code).toBe('SCHEDULER_DEPENDENCY_DOWN');
    expect(waited).toBeLessThan(1400); // failed before the pause ended (300 ms timeout, sweep every 75 ms)
    await new Promise((r) => setTimeout(r, 1600));
    expect(await store.heartbeat(heartbeat(w, Date.now()))).toMatchObject({ kind: 'applied' });
  });

  it('CommandDeadlines drops settled commands and keeps no reference to them', async () => {
    const deadlines = new CommandDeadlines();
    const sha = (await inspect.script('LOAD', 'return 1')) as string;
    const sent = Array.from({ length: 50 }, () =>
      redis.sendCommand(new PrebuiltCommand(encodeEvalsha(sha, 0, []), null, deadlines)),
    );
    expect(await Promise.all(sent)).toEqual(Array(50).fill(1));
    expect(deadlines.pending).toBe(50);
    deadlines.sweep();
    expect(deadlines.pending).toBe(0);
    deadlines.close();
  });
});
