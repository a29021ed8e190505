import { createServer } from 'node:http';
import type { Config } from '../../shared/config.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { Worker } from 'bullmq';
import { DerivedWorkQueues, QUEUE_FAILOVER, type FailoverJob } from '../../shared/queues.ts';
import { createRedisClient, waitUntilReady } from '../../shared/redis-client.ts';
import { runService } from '../../shared/service-runner.ts';
import { JobPlacer } from './job-placer.ts';
import { JobStore } from './job-store.ts';
import { createSelectorApi } from './selector-api.ts';
import { createSelectorMetrics } from './selector-metrics.ts';
import { SnapshotIndex } from './snapshot-index.ts';
import { SnapshotReplica } from './snapshot-replica.ts';
import { StalenessWindow } from './staleness-window.ts';

export interface SelectorService {
  port: number;
  close(): Promise<void>;
}

/** Composition root of the selector: config → clients → replica → placer → HTTP API. */
export async function startSelector(config: Config, log: Logger): Promise<SelectorService> {
  const env = config.env;
  const keys = new KeyBuilder(config.prefix, config.shards);
  const redis = createRedisClient(config, log, { name: 'selector', mode: 'fail-fast' });
  const tail = createRedisClient(config, log, { name: 'selector-replica', mode: 'blocking' });
  const queueRedis = createRedisClient(config, log, { name: 'selector-queues', mode: 'fail-fast' });
  await Promise.all([waitUntilReady(redis), waitUntilReady(tail), waitUntilReady(queueRedis)]);

  const registry = createMetricsRegistry('selector');
  const metrics = createSelectorMetrics(registry);
  const staleness = new StalenessWindow();
  const lastHeartbeat = new Map<string, number>();
  const index = new SnapshotIndex();
  const replica = new SnapshotReplica(tail, keys, index, {
    log: log.child({ component: 'snapshot-replica' }),
    // heartbeat received (server time) → visible to this selector's choices; only for entries
    // that show a newer heartbeat than the last one seen (not republishes for reservations)
    onApplied: (_shard, _version, entries) => {
      const now = Date.now();
      for (const e of entries) {
        if (e.hb <= (lastHeartbeat.get(e.id) ?? 0)) continue;
        lastHeartbeat.set(e.id, e.hb);
        const ms = Math.max(0, now - e.hb);
        staleness.add(ms);
        metrics.replicaStaleness.observe(ms / 1000);
      }
    },
  });
  await replica.start();

  const queues = new DerivedWorkQueues(queueRedis, keys, env.SB_FLUSH_DELAY_MS);
  const jobs = new JobStore(redis, keys, env.SB_JOB_RETENTION_MS);
  const shardStatus = () => new Map(replica.status().shards.map((s) => [s.shard, s]));
  const placer = new JobPlacer(
    redis,
    keys,
    index,
    jobs,
    queues,
    (shard) => {
      const s = shardStatus().get(shard);
      return { version: s?.version ?? 0, ageMs: s?.age_ms ?? 0 };
    },
    metrics,
    {
      policy: {
        strategy: env.SB_SELECT_STRATEGY,
        resourceThreshold: env.SB_RESOURCE_THRESHOLD,
        affinity: env.SB_AFFINITY,
      },
      ackTimeoutMs: env.SB_ACK_TIMEOUT_MS,
      nodeTtlMs: env.SB_NODE_TTL_MS,
      maxReservationAttempts: env.SB_RESERVATION_ATTEMPTS,
      inboxLength: env.SB_INBOX_LEN,
    },
  );
  // The worker finds timed-out attempts; a selector (it holds the snapshot) places the next one.
  const failoverWorker = new Worker<FailoverJob>(QUEUE_FAILOVER, (job) => placer.failover(job.data), {
    connection: tail,
    prefix: keys.queuePrefix,
    concurrency: env.SB_WORKER_CONCURRENCY,
  });
  failoverWorker.on('error', (err) => log.warn({ err: err.message }, 'failover worker error'));
  let closing = false;
  const app = createSelectorApi({
    auth: config.auth,
    placer,
    jobs,
    index,
    redis,
    keys,
    queues,
    snapshot: () => {
      const status = replica.status();
      return {
        nodes: index.size,
        shards: status.shards,
        reloads: status.reloads,
        staleness_ms: staleness.quantiles(),
      };
    },
    isReady: async () => {
      try {
        return replica.ready && (await redis.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    isClosing: () => closing,
    metrics,
    registry,
    maxMessageBytes: env.SB_MAX_MESSAGE_BYTES,
    log: log.child({ component: 'selector-api' }),
  });
  const server = createServer({ keepAliveTimeout: 65_000 }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(env.PORT ?? 8081, env.HOST, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : (env.PORT ?? 8081),
    close: async () => {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await failoverWorker.close();
      await replica.close();
      await queues.close();
      await Promise.allSettled([redis.quit(), tail.quit(), queueRedis.quit()]);
    },
  };
}

runService(import.meta.url, 'selector', startSelector);
