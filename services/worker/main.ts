import { Queue, Worker, type Job } from 'bullmq';
import type { Config } from '../../shared/config.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { startOpsServer } from '../../shared/ops-server.ts';
import {
  DerivedWorkQueues,
  LIVENESS_SCHEDULER_ID,
  QUEUE_FAILOVER,
  QUEUE_LIVENESS,
  QUEUE_POOL_INDEX,
  QUEUE_SNAPSHOT_FLUSH,
  type PoolIndexJob,
  type SnapshotFlushJob,
} from '../../shared/queues.ts';
import { createRedisClient, waitUntilReady } from '../../shared/redis-client.ts';
import { runService } from '../../shared/service-runner.ts';
import { JobTimeouts } from './job-timeouts.ts';
import { LivenessReaper } from './liveness-reaper.ts';
import { PoolIndexer } from './pool-indexer.ts';
import { SnapshotFlusher } from './snapshot-flusher.ts';
import { createWorkerMetrics, registerQueueDepths } from './worker-metrics.ts';

export interface WorkerService {
  port: number;
  /** Graceful stop: finish active jobs, close queues, quit Redis. */
  close(): Promise<void>;
}

/** Composition root of the worker: config → clients → components → BullMQ workers → ops server. */
export async function startWorker(config: Config, log: Logger): Promise<WorkerService> {
  const env = config.env;
  const keys = new KeyBuilder(config.prefix, config.shards);
  // Scripts and reads: waits out a Redis blip instead of failing the job.
  const redis = createRedisClient(config, log, { name: 'worker', mode: 'blocking' });
  // BullMQ (blocking commands need their own connections; BullMQ duplicates this one).
  const bull = createRedisClient(config, log, { name: 'worker-bullmq', mode: 'blocking' });
  await Promise.all([waitUntilReady(redis), waitUntilReady(bull)]);

  const registry = createMetricsRegistry('worker');
  const metrics = createWorkerMetrics(registry);
  const queues = new DerivedWorkQueues(bull, keys, env.SB_FLUSH_DELAY_MS);
  const indexer = new PoolIndexer(redis, keys, queues, metrics);
  const flusher = new SnapshotFlusher(redis, keys, queues, metrics, {
    batchSize: env.SB_FLUSH_BATCH,
    streamLength: env.SB_DELTA_STREAM_LEN,
    pauseAfterTakeMs: env.SB_FAULT_FLUSH_PAUSE_MS,
  });
  const timeouts = new JobTimeouts(redis, keys, queues, metrics, {
    maxAttempts: env.SB_MAX_ATTEMPTS,
    perTick: 1000,
    streamCap: env.SB_INBOX_LEN,
  });
  const reaper = new LivenessReaper(redis, keys, queues, metrics, timeouts, {
    nodeTtlMs: env.SB_NODE_TTL_MS,
    retentionMs: env.SB_NODE_RETENTION_MS,
    perTick: 1000,
    reconcileEvery: 12,
  });

  const common = { connection: bull, prefix: keys.queuePrefix, concurrency: env.SB_WORKER_CONCURRENCY };
  const failed = (queue: string) => (job: Job | undefined, err: Error) =>
    log.warn({ queue, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'job failed');
  const workers = [
    new Worker<PoolIndexJob>(QUEUE_POOL_INDEX, (job) => indexer.index(job.data.nodeId), common),
    // A flush whose process died is found stalled within lockDuration + stalledInterval and
    // runs again; takeDirty hands it the batch the dead one took. Locks renew while alive.
    new Worker<SnapshotFlushJob>(QUEUE_SNAPSHOT_FLUSH, (job) => flusher.flush(job.data.shard), {
      ...common,
      lockDuration: 5_000,
      stalledInterval: 2_500,
    }),
    new Worker(QUEUE_LIVENESS, () => reaper.tick(), { ...common, concurrency: 1 }),
  ];
  for (const w of workers) {
    w.on('failed', failed(w.name));
    w.on('error', (err) => log.warn({ queue: w.name, err: err.message }, 'worker error'));
  }
  const liveness = new Queue(QUEUE_LIVENESS, { connection: bull, prefix: keys.queuePrefix });
  registerQueueDepths(registry, {
    [QUEUE_POOL_INDEX]: queues.poolIndex as Queue,
    [QUEUE_SNAPSHOT_FLUSH]: queues.snapshotFlush as Queue,
    [QUEUE_FAILOVER]: queues.failover as Queue,
    [QUEUE_LIVENESS]: liveness,
  });
  await liveness.upsertJobScheduler(
    LIVENESS_SCHEDULER_ID,
    { every: env.SB_REAPER_INTERVAL_MS },
    { name: LIVENESS_SCHEDULER_ID, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
  );

  const ops = await startOpsServer({
    port: env.PORT ?? 8082,
    host: env.HOST,
    registry,
    isReady: async () => {
      try {
        return (await redis.ping()) === 'PONG' && workers.every((w) => w.isRunning());
      } catch {
        return false;
      }
    },
  });
  return {
    port: ops.port,
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([liveness.close(), queues.close()]);
      await ops.close();
      await Promise.allSettled([redis.quit(), bull.quit()]);
    },
  };
}

runService(import.meta.url, 'worker', startWorker);
