import type { Config } from '../../shared/config.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { NodeQuarantine, quarantineCounter, quarantinePolicy } from '../../shared/quarantine.ts';
import { DerivedWorkQueues } from '../../shared/queues.ts';
import { createRedisClient, waitForRedis } from '../../shared/redis-client.ts';
import { checkRedisGuarantees } from '../../shared/redis-guarantees.ts';
import { RedisReachability } from '../../shared/redis-reachability.ts';
import { clusterChildMetrics, isClusterChild, processCount } from '../../shared/process-cluster.ts';
import { runService } from '../../shared/service-runner.ts';
import { closeBounded } from '../../shared/shutdown.ts';
import { httpLimits, ServiceHttp } from '../../shared/service-http.ts';
import { createGatewayMetrics } from './gateway-metrics.ts';
import { AssignmentFeed } from './assignment-feed.ts';
import { GatewayServer } from './gateway-server.ts';
import { JobProgress } from './job-progress.ts';
import { NodeAuthenticator } from './node-auth.ts';
import { NodeRegistry } from './node-registry.ts';
import { JobReadStore } from '../../shared/store/job-reads.ts';
import { JobRecordStore } from '../../shared/store/job-record.ts';
import { NodeShardStore } from '../../shared/store/node-shard.ts';
import { SlotStore, slotOptions } from '../../shared/store/slots.ts';
import { NodeService } from './node-service.ts';

export interface Gateway {
  port: number;
  /** Graceful stop: stop accepting, close sockets with 1001, close queues, quit Redis. */
  close(): Promise<void>;
}

/**
 * Composition root of the gateway: config → clients (connecting) → HTTP (alive, not ready
 * yet) → wait for Redis, however long → components → serve. Resolves once it serves.
 */
export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const env = config.env;
  const keys = new KeyBuilder(config.prefix, config.shards);
  const metricsRegistry = createMetricsRegistry('gateway');
  let server: GatewayServer | undefined;
  const reachability = new RedisReachability(config.redis, log.child({ component: 'redis' }));
  const redis = createRedisClient(config, log, {
    name: 'gateway',
    mode: 'fail-fast',
    reachability,
    autoPipelining: true,
  });
  const queueRedis = createRedisClient(config, log, {
    name: 'gateway-queues',
    mode: 'fail-fast',
    reachability,
  });
  const feedRedis = createRedisClient(config, log, { name: 'gateway-feed', mode: 'blocking', reachability });
  const quitRedis = () => Promise.allSettled([redis.quit(), queueRedis.quit(), feedRedis.quit()]);
  const http = await ServiceHttp.listen(env.PORT ?? 8080, env.HOST, {
    service: 'gateway',
    limits: { ...httpLimits(env), maxConnections: env.SB_MAX_CONNECTIONS },
    registry: metricsRegistry,
    ...(isClusterChild() ? { metrics: clusterChildMetrics(metricsRegistry) } : {}),
    readyTimeoutMs: env.SB_REDIS_COMMAND_TIMEOUT_MS,
    isReady: async () => server !== undefined && !server.closing && (await redis.ping()) === 'PONG',
  }).catch(async (err: unknown) => {
    await quitRedis();
    throw err;
  });
  try {
    await waitForRedis([redis, queueRedis, feedRedis]);
    void checkRedisGuarantees(redis, log.child({ component: 'redis' })); // one warning line if not
    const feed = new AssignmentFeed(redis, feedRedis, keys, log.child({ component: 'assignment-feed' }));
    await feed.start();

    const queues = new DerivedWorkQueues(queueRedis, keys, log);
    const store = new NodeShardStore(
      redis,
      keys,
      queues,
      {
        requireGpu: env.SB_REQUIRE_GPU,
        loadChangeThreshold: env.SB_LOAD_CHANGE_THRESHOLD,
        snapshotMaxAgeMs: env.SB_SNAPSHOT_MAX_AGE_MS,
        unhealthyHeartbeats: env.SB_UNHEALTHY_HEARTBEATS,
        reorderWindowMs: env.SB_HEARTBEAT_REORDER_MS,
      },
      log,
    );
    const registry = new NodeRegistry(store, log.child({ component: 'node-registry' }));
    const quarantine = new NodeQuarantine(
      redis,
      keys,
      queues,
      quarantinePolicy(env),
      quarantineCounter(metricsRegistry),
      log.child({ component: 'quarantine' }),
    );
    const jobs = new JobProgress(
      new SlotStore(redis, keys, slotOptions(env), queues),
      new JobRecordStore(redis, keys),
      env.SB_JOB_TIMEOUT_MS,
      undefined,
      quarantine,
    );
    const auth = new NodeAuthenticator(config.auth, redis, keys);
    const metrics = createGatewayMetrics(metricsRegistry);
    const jobReads = new JobReadStore(redis, keys);
    const service = new NodeService(
      registry,
      jobs,
      {
        requireGpu: env.SB_REQUIRE_GPU,
        defaultMaxJobs: env.SB_DEFAULT_MAX_JOBS,
        heartbeatIntervalMs: env.SB_HEARTBEAT_INTERVAL_MS,
        nodeTtlMs: env.SB_NODE_TTL_MS,
      },
      auth,
      metrics.jobResults,
      // the placement span of the job (written by the selector's claim)
      (jobId) => jobReads.traceparent(jobId),
    );
    const gateway = new GatewayServer(http, {
      service,
      feed,
      auth,
      metrics,
      limits: {
        maxMessageBytes: env.SB_MAX_MESSAGE_BYTES,
        rate: env.SB_WS_RATE_LIMIT,
        maxQueued: env.SB_WS_MAX_QUEUED,
        maxInflight: env.SB_MAX_INFLIGHT,
        registerTimeoutMs: env.SB_WS_REGISTER_TIMEOUT_MS,
        registerWaitMs: env.SB_WS_REGISTER_WAIT_MS,
        pingIntervalMs: env.SB_WS_PING_INTERVAL_MS,
      },
      log: log.child({ component: 'gateway-server' }),
    });
    server = gateway;
    return {
      port: http.port,
      close: () =>
        closeBounded({
          redis: [redis, queueRedis, feedRedis],
          graceMs: env.SB_SHUTDOWN_TIMEOUT_MS / 2,
          graceful: async () => {
            await gateway.close(); // sockets closed with 1001, in-flight requests answered
            await feed.close();
            await queues.close();
            store.close();
          },
          force: () => void http.close(),
        }),
    };
  } catch (err) {
    await http.close();
    await quitRedis();
    throw err;
  }
}

// SB_GATEWAY_PROCESSES processes on the one port (0: one per core), see shared/process-cluster.ts
runService(import.meta.url, 'gateway', startGateway, (config) =>
  processCount(config.env.SB_GATEWAY_PROCESSES),
);
