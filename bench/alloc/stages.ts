/**
 * The stages bench/alloc.ts measures, on the gateway's own functions: the heartbeat frame as the
 * bench sends it, a real redis-server and the gateway's Redis client, registry and service.
 */
import { startRedisServer } from '../../scripts/lib/redis-server-process.ts';
import { createGatewayMetrics } from '../../services/gateway/gateway-metrics.ts';
import { CapabilityCache } from '../../services/gateway/capability-cache.ts';
import { NodeAuthenticator } from '../../services/gateway/node-auth.ts';
import { NodeRegistry } from '../../services/gateway/node-registry.ts';
import { NodeService } from '../../services/gateway/node-service.ts';
import { JobProgress } from '../../services/gateway/job-progress.ts';
import { loadConfig } from '../../shared/config.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { parseJsonMessage } from '../../shared/protocol/json-message.ts';
import { nodeHeartbeatCoreSchema, nodeHeartbeatSchema } from '../../shared/protocol/node-messages.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import { isHeartbeatCore } from '../../shared/protocol/heartbeat-core.ts';
import {
  HEARTBEAT_KEYS,
  heartbeatKeysAndArgs,
  NodeShardStore,
  type HeartbeatWrite,
} from '../../shared/store/node-shard.ts';
import { CommandDeadlines, encodeEvalsha, PrebuiltCommand } from '../../shared/store/script-command.ts';
import { JobRecordStore } from '../../shared/store/job-record.ts';
import { SlotStore, slotOptions } from '../../shared/store/slots.ts';
import { scriptSha } from '../../shared/lua-scripts.ts';
import { DerivedWorkQueues } from '../../shared/queues.ts';
import { createRedisClient, waitForRedis } from '../../shared/redis-client.ts';
import { heartbeatFrame, registerBody } from '../lib/node-messages.ts';
import { HeartbeatMemo } from '../../services/gateway/heartbeat-memo.ts';
import { HeartbeatScan } from '../../shared/protocol/heartbeat-scan.ts';
import { HeartbeatTemplate } from '../../shared/store/heartbeat-command.ts';
import { wholeGateway } from './whole-gateway.ts';
import { processCpuSeconds } from '../lib/cpu.ts';

/** What the capability cache compared before: the fields re-serialised. */
function rawText(body: Record<string, unknown>): string[] {
  return [
    JSON.stringify([body['installed_services'] ?? null, body['capability_by_type'] ?? null]),
    JSON.stringify(body['language_capabilities']),
  ];
}

export interface Stage {
  name: string;
  fn: () => unknown;
  /** heartbeats one call of `fn` handles (default 1) */
  per?: number;
  /** calls of `fn` per measured run (default: N ÷ per) */
  calls?: number;
}

export async function stages() {
  const server = await startRedisServer();
  const config = loadConfig({ REDIS_URL: server.url, SB_AUTH: 'off', PORT: '0' }, 'gateway');
  const log = createLogger('alloc-bench', 'silent');
  const env = config.env;
  const keys = new KeyBuilder(config.prefix, config.shards);
  const redis = createRedisClient(config, log, { name: 'gateway', mode: 'fail-fast' });
  const queueRedis = createRedisClient(config, log, { name: 'gateway-queues', mode: 'fail-fast' });
  await waitForRedis([redis, queueRedis]);
  const queues = new DerivedWorkQueues(queueRedis, keys, log);
  const policy = {
    requireGpu: env.SB_REQUIRE_GPU,
    loadChangeThreshold: env.SB_LOAD_CHANGE_THRESHOLD,
    snapshotMaxAgeMs: env.SB_SNAPSHOT_MAX_AGE_MS,
    unhealthyHeartbeats: env.SB_UNHEALTHY_HEARTBEATS,
    reorderWindowMs: env.SB_HEARTBEAT_REORDER_MS,
  };
  const store = new NodeShardStore(redis, keys, queues, policy, log);
  const registry = new NodeRegistry(store, log);
  const auth = new NodeAuthenticator(config.auth, redis, keys);
  const jobs = new JobProgress(
    new SlotStore(redis, keys, slotOptions(env), queues),
    new JobRecordStore(redis, keys),
    env.SB_JOB_TIMEOUT_MS,
  );
  const service = new NodeService(
    registry,
    jobs,
    {
      requireGpu: false,
      defaultMaxJobs: 3,
      heartbeatIntervalMs: env.SB_HEARTBEAT_INTERVAL_MS,
      nodeTtlMs: env.SB_NODE_TTL_MS,
    },
    auth,
  );
  const metrics = createGatewayMetrics(createMetricsRegistry('gateway'));
  const nodeId = 'alloc-node-1';
  const principal = { kind: 'node' as const, nodeId };
  await service.register(registerBody(nodeId), principal, 'ws');

  let k = 0;
  let ts = Date.now();
  const text = heartbeatFrame(nodeId, 1, 0, ts);
  const buffer = Buffer.from(text);
  const body = JSON.parse(text) as Record<string, unknown>;
  await service.heartbeat(body, principal, nodeId); // fills the capability cache
  const cache = new CapabilityCache();
  const core = parseOrThrow(nodeHeartbeatSchema, body);
  cache.resolve(nodeId, body, core);
  const frames = Array.from({ length: 16 }, (_, i) => Buffer.from(heartbeatFrame(nodeId, 1, i, ts + i)));
  const shard = keys.forNode(nodeId);
  const hit = cache.hit(nodeId, body)!;
  const write = (): HeartbeatWrite => ({
    nodeId,
    timestamp: ++ts,
    cpu: 20,
    gpu: 30,
    gpuMem: 40,
    mem: 50,
    running: 0,
    anyReady: true,
    svc: hit.svc,
    lang: hit.lang,
    models: null,
    cached: true,
  });
  const sha = scriptSha('recordHeartbeat');
  const deadlines = new CommandDeadlines();
  const memo = new HeartbeatMemo();
  const scan = new HeartbeatScan();
  memo.remember(buffer, nodeId, hit, scan);
  const template = HeartbeatTemplate.build(
    sha,
    HEARTBEAT_KEYS,
    heartbeatKeysAndArgs,
    shard,
    write(),
    policy,
  )!;
  // the fast path's memo, primed as the socket primes it: one heartbeat through the full path
  const serviceMemo = new HeartbeatMemo();
  await service.heartbeat(JSON.parse(text), principal, nodeId, buffer, serviceMemo);
  // the fast path's calls as sockets hold them: one per heartbeat in flight, made once
  const calls = Array.from({ length: 16 }, () => {
    let settle: () => void = () => undefined;
    let fail: (err: unknown) => void = () => undefined;
    const call = service.heartbeatCall(
      (kind) => (kind === 'not_registered' ? fail(new Error(kind)) : settle()),
      (err) => fail(err),
    );
    return {
      send: (): Promise<void> =>
        new Promise<void>((resolve, reject) => {
          settle = resolve;
          fail = reject;
          if (!service.matchHeartbeat(frames[k++ & 15]!, nodeId, serviceMemo)) throw new Error('no match');
          service.sendMatchedHeartbeat(principal, nodeId, serviceMemo, call);
        }),
    };
  });
  const list: Stage[] = [
    { name: '(floor of an async stage: one awaited resolved promise)', fn: () => Promise.resolve() },
    {
      name: 'scan: HeartbeatMemo.match on the frame bytes (fast path)',
      fn: () => memo.match(frames[k++ & 15]!, nodeId, scan),
    },
    { name: '  (full path: frame Buffer → utf8 string)', fn: () => buffer.toString('utf8') },
    { name: '  (full path: depth check + JSON.parse)', fn: () => parseJsonMessage(text, 'frame') },
    { name: 'capability cache hit (sameJson on parsed values)', fn: () => cache.hit(nodeId, body) },
    { name: '  (before: JSON.stringify of the capability fields)', fn: () => rawText(body) },
    { name: 'validation: isHeartbeatCore (by hand)', fn: () => isHeartbeatCore(body) },
    {
      name: '  (before: nodeHeartbeatCoreSchema, zod)',
      fn: () => parseOrThrow(nodeHeartbeatCoreSchema, body),
    },
    {
      name: 'EVALSHA keys + args + RESP buffer',
      fn: () =>
        encodeEvalsha(sha, HEARTBEAT_KEYS, heartbeatKeysAndArgs(shard, write(), policy, Date.now(), false)),
    },
    {
      name: "EVALSHA bytes from the node's template (heartbeat-command.ts)",
      fn: () => template.encode(write(), Date.now()),
    },
    {
      name: 'EVALSHA round trip, prebuilt command (store)',
      fn: () => store.recordHeartbeat(shard, write(), false),
    },
    {
      name: '  … 16 in flight (one socket write and read per 16)',
      per: 16,
      fn: () => Promise.all(Array.from({ length: 16 }, () => store.recordHeartbeat(shard, write(), false))),
    },
    {
      name: '  (before: the prebuilt command on ioredis, 16 in flight)',
      per: 16,
      fn: () =>
        Promise.all(
          Array.from({ length: 16 }, () =>
            redis.sendCommand(new PrebuiltCommand(template.encode(write(), Date.now()), null, deadlines)),
          ),
        ),
    },
    {
      name: '  (before: the defined command, ioredis Script)',
      fn: () => {
        const [a, b, c, d, e, f, g, ...rest] = heartbeatKeysAndArgs(
          shard,
          write(),
          policy,
          Date.now(),
          false,
        ) as string[];
        return redis.recordHeartbeat(a!, b!, c!, d!, e!, f!, g!, ...rest);
      },
    },
    {
      name: 'metrics: countHeartbeat + duration record (folded on scrape)',
      fn: () => {
        metrics.countHeartbeat('applied');
        metrics.heartbeatSeconds.record(0.001);
      },
    },
    {
      name: '  (before: sb_heartbeats_total inc({outcome}) + observe)',
      fn: () => {
        metrics.heartbeats.inc({ outcome: 'applied' });
        metrics.heartbeatSeconds.observe(0.001);
      },
    },
    {
      name: 'NodeService fast path from the frame bytes (scan → Redis reply; + its promise)',
      fn: () => calls[0]!.send(),
    },
    {
      name: '  … 16 in flight',
      per: 16,
      fn: () => Promise.all(calls.map((call) => call.send())),
    },
    {
      name: '  (full path: NodeService.heartbeat from the frame text, parse → Redis reply)',
      fn: () => {
        const b = JSON.parse(frames[k++ & 15]!.toString('utf8')) as Record<string, unknown>;
        b['timestamp'] = ++ts;
        return service.heartbeat(b, principal, nodeId);
      },
    },
  ];
  // the whole gateway over real sockets: 1 warm-up + at most 20 measured calls (alloc.ts)
  const gw = await wholeGateway(server.url, 128, 21);
  list.push({
    name: 'WHOLE GATEWAY: a WebSocket heartbeat, socket read → Redis reply (16 nodes)',
    per: gw.heartbeats,
    calls: 1,
    fn: () => gw.run(),
  });
  return {
    frameBytes: buffer.length,
    list,
    /**
     * CPU per heartbeat of the whole gateway (this process: the frames are prebuilt, so the
     * client side costs a socket write per batch) and of redis-server (the script and its I/O),
     * over `runs` batches after the allocation runs.
     */
    cpu: async (runs: number) => {
      const cpuGw = await wholeGateway(server.url, 128, runs + 2);
      await cpuGw.run();
      await cpuGw.run();
      const redisBefore = processCpuSeconds(server.pid);
      const before = process.cpuUsage();
      for (let i = 0; i < runs; i++) await cpuGw.run();
      const used = process.cpuUsage(before);
      const redisAfter = processCpuSeconds(server.pid);
      const heartbeats = runs * cpuGw.heartbeats;
      await cpuGw.close();
      return {
        heartbeats,
        gatewayUs: (used.user + used.system) / heartbeats,
        redisUs:
          redisBefore === null || redisAfter === null
            ? null
            : ((redisAfter - redisBefore) * 1e6) / heartbeats,
      };
    },
    close: async () => {
      await gw.close();
      await queues.close();
      store.close();
      deadlines.close();
      await Promise.allSettled([redis.quit(), queueRedis.quit()]);
      await server.destroy();
    },
  };
}
