/**
 * Baseline of the heartbeat benchmark (a child process, pinned where the gateway runs): the
 * same `recordHeartbeat` script, sent exactly as the gateway sends it — the node-shard store's
 * `recordHeartbeat` (its keys and ARGV packing, its prebuilt EVALSHA, no blobs as for a cached
 * node) on the gateway's own Redis client factory — with no WebSocket, no JSON, no validation
 * and no follow-up. A fixed window of calls in flight, as fast as Redis answers. What the gateway
 * achieves divided by this is the share of the Redis path's capacity it keeps.
 *
 * Command (IPC): run {redisUrl, prefix, count, window, warmupS, durationS}; emits
 * `window-start` and `window-end` so the orchestrator can sample CPU over the same window.
 */
import { anyServiceReady, capabilityPart, servicesPart } from '../../shared/capability-digest.ts';
import { loadConfig } from '../../shared/config.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { nodeHeartbeatSchema } from '../../shared/protocol/node-messages.ts';
import { createRedisClient, waitUntilReady } from '../../shared/redis-client.ts';
import { NodeShardStore } from '../../shared/store/node-shard.ts';
import { emit, serveIpc } from '../lib/ipc.ts';
import { benchNodeId, heartbeatFrame, heartbeatLoad } from '../lib/node-messages.ts';
import { summarize, type SampleSummary } from '../lib/stats.ts';

export interface BaselineResult {
  windowS: number;
  calls: number;
  callsPerSec: number;
  /** Script return codes: 1 applied, 0 stale, -1 not registered. */
  codes: Record<string, number>;
  capabilityChanged: number;
  dirtyWasEmpty: number;
  failures: number;
  firstFailure: string | null;
  latencyMs: SampleSummary;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runBaseline(msg: Record<string, unknown>): Promise<BaselineResult> {
  const count = Number(msg['count']);
  const window = Number(msg['window']);
  const config = loadConfig({
    REDIS_URL: String(msg['redisUrl']),
    SB_PREFIX: String(msg['prefix']),
    SB_AUTH: 'off',
  });
  const env = config.env;
  const keys = new KeyBuilder(config.prefix, config.shards);
  const redis = createRedisClient(config, createLogger('bench-baseline', 'warn'), {
    name: 'bench-baseline',
    mode: 'fail-fast',
  });
  await waitUntilReady(redis);

  // The capability digests exactly as the gateway computes them from a parsed heartbeat.
  const hb = nodeHeartbeatSchema.parse(JSON.parse(heartbeatFrame(benchNodeId(0), 0, 0, 0)));
  const svc = servicesPart(hb.installed_services, hb.capability_by_type);
  const lang = hb.language_capabilities == null ? null : capabilityPart(hb.language_capabilities);
  const anyReady = anyServiceReady(hb.capability_by_type);
  const store = new NodeShardStore(
    redis,
    keys,
    { requestFlush: () => Promise.resolve() },
    {
      requireGpu: env.SB_REQUIRE_GPU,
      loadChangeThreshold: env.SB_LOAD_CHANGE_THRESHOLD,
      snapshotMaxAgeMs: env.SB_SNAPSHOT_MAX_AGE_MS,
      unhealthyHeartbeats: env.SB_UNHEALTHY_HEARTBEATS,
      reorderWindowMs: env.SB_HEARTBEAT_REORDER_MS,
    },
    createLogger('bench-baseline', 'warn'),
  );
  const nodes = Array.from({ length: count }, (_, i) => {
    const id = benchNodeId(i);
    return { id, index: i, keys: keys.forNode(id), n: 0, lastTs: 0 };
  });

  let seq = 0;
  let measuring = false;
  let stopped = false;
  let calls = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  let capabilityChanged = 0;
  let dirtyWasEmpty = 0;
  const codes: Record<string, number> = {};
  const latencies: number[] = [];

  const worker = async (): Promise<void> => {
    while (!stopped) {
      const node = nodes[seq++ % count]!;
      node.n++;
      node.lastTs = Math.max(Date.now(), node.lastTs + 1);
      const load = heartbeatLoad(node.index, node.n);
      const started = performance.now();
      try {
        const [code, , capChanged, wasEmpty] = await store.recordHeartbeat(
          node.keys,
          {
            nodeId: node.id,
            timestamp: node.lastTs,
            cpu: load.cpu,
            gpu: load.gpu,
            gpuMem: 40,
            mem: load.mem,
            running: 0,
            anyReady,
            svc,
            lang,
            models: null,
            cached: true,
          },
          false,
        );
        if (measuring) {
          calls++;
          codes[code] = (codes[code] ?? 0) + 1;
          capabilityChanged += capChanged;
          dirtyWasEmpty += wasEmpty;
          latencies.push(performance.now() - started);
        }
      } catch (err) {
        failures++;
        firstFailure ??= (err as Error).message;
        if (failures > 1000) throw err;
      }
    }
  };

  const workers = Array.from({ length: window }, worker);
  const done = Promise.all(workers);
  await Promise.race([sleep(Number(msg['warmupS']) * 1000), done]);
  measuring = true;
  const t0 = performance.now();
  emit('window-start');
  await Promise.race([sleep(Number(msg['durationS']) * 1000), done]);
  measuring = false;
  const windowS = (performance.now() - t0) / 1000;
  emit('window-end');
  stopped = true;
  await done;
  store.close();
  await redis.quit();
  return {
    windowS,
    calls,
    callsPerSec: calls / windowS,
    codes,
    capabilityChanged,
    dirtyWasEmpty,
    failures,
    firstFailure,
    latencyMs: summarize(latencies),
  };
}

serveIpc(async (cmd, msg) => {
  if (cmd === 'run') return runBaseline(msg);
  throw new Error(`unknown command ${cmd}`);
});
