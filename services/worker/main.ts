import { Queue, Worker, type Job } from 'bullmq';
import type { Config } from '../../shared/config.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import {
  DerivedWorkQueues,
  logQueueErrors,
  QUEUE_FAILOVER,
  QUEUE_LIVENESS,
  QUEUE_SNAPSHOT_FLUSH,
  type SnapshotFlushJob,
} from '../../shared/queues.ts';
import { SwitchboardError } from '../../shared/errors.ts';
import { sendError } from '../../shared/http-body.ts';
import { createRedisClient, waitForRedis } from '../../shared/redis-client.ts';
import { checkRedisGuarantees } from '../../shared/redis-guarantees.ts';
import { RedisReachability } from '../../shared/redis-reachability.ts';
import { runService } from '../../shared/service-runner.ts';
import { closeBounded } from '../../shared/shutdown.ts';
import { httpLimits, ServiceHttp } from '../../shared/service-http.ts';
import { sweepMarginMs } from '../../shared/open-jobs.ts';
import { JobRecordStore } from '../../shared/store/job-record.ts';
import { SlotStore, slotOptions } from '../../shared/store/slots.ts';
import { JobSweep } from './job-sweep.ts';
import { JobTimeouts } from './job-timeouts.ts';
import { LivenessReaper } from './liveness-reaper.ts';
import { LivenessSchedule } from './liveness-schedule.ts';
import { QueueWatchdog, queueStallCounter, queueWatchdogOptions } from '../../shared/queue-watchdog.ts';
import { SnapshotFlusher } from './snapshot-flusher.ts';
import { RetentionStore, SlotCountStore, SnapshotStore } from '../../shared/store/snapshot.ts';
import { SlotRecount } from './slot-recount.ts';
import { NodeQuarantine, quarantineCounter, quarantinePolicy } from '../../shared/quarantine.ts';
import { createWorkerMetrics, registerQueueDepths } from './worker-metrics.ts';

/** How long one snapshot-flush job keeps flushing a busy shard (snapshot-flusher.ts). */
const FLUSH_HOLD_MS = 1_000;

export interface WorkerService {
  port: number;
  /** Graceful stop: finish active jobs, close queues, quit Redis. */
  close(): Promise<void>;
}

/**
 * Composition root of the worker: config → clients (connecting) → ops HTTP (alive, not ready
 * yet) → wait for Redis, however long → components → BullMQ workers. Resolves once they run.
 */
export async function startWorker(config: Config, log: Logger): Promise<WorkerService> {
  const env = config.env;
  const keys = new KeyBuilder(config.prefix, config.shards);
  const registry = createMetricsRegistry('worker');
  const metrics = createWorkerMetrics(registry);
  let workers: Worker[] | undefined;
  let schedule: LivenessSchedule | undefined;
  let closing = false;
  const reachability = new RedisReachability(config.redis, log.child({ component: 'redis' }));
  // Scripts and reads: waits out a Redis blip instead of failing the job.
  const redis = createRedisClient(config, log, { name: 'worker', mode: 'blocking', reachability });
  // BullMQ (blocking commands need their own connections; BullMQ duplicates this one).
  const bull = createRedisClient(config, log, { name: 'worker-bullmq', mode: 'blocking', reachability });
  const quitRedis = () => Promise.allSettled([redis.quit(), bull.quit()]);
  const http = await ServiceHttp.listen(env.PORT ?? 8082, env.HOST, {
    service: 'worker',
    limits: { ...httpLimits(env) },
    registry,
    readyTimeoutMs: env.SB_REDIS_COMMAND_TIMEOUT_MS,
    isReady: async () =>
      !closing &&
      workers !== undefined &&
      workers.every((w) => w.isRunning()) &&
      redis.status === 'ready' && // its PING would wait in the offline queue
      (await redis.ping()) === 'PONG' &&
      schedule !== undefined &&
      (await schedule.exists()),
  }).catch(async (err: unknown) => {
    await quitRedis();
    throw err;
  });
  try {
    await waitForRedis([redis, bull]);
    void checkRedisGuarantees(redis, log.child({ component: 'redis' })); // one warning line if not
    const queues = new DerivedWorkQueues(bull, keys, log);
    const pauseMs = env.SB_FAULT_FLUSH_PAUSE_MS;
    const flusher = new SnapshotFlusher(new SnapshotStore(redis, keys), queues, metrics, {
      batchSize: env.SB_FLUSH_BATCH,
      delayMs: env.SB_FLUSH_DELAY_MS,
      holdMs: FLUSH_HOLD_MS,
      streamLength: env.SB_DELTA_STREAM_LEN,
      loadChangeThreshold: env.SB_LOAD_CHANGE_THRESHOLD,
      deltaWindowMs: env.SB_DELTA_WINDOW_MS,
      ...(pauseMs > 0 ? { pauseAfterRead: () => new Promise<void>((r) => setTimeout(r, pauseMs)) } : {}),
    });
    const quarantine = new NodeQuarantine(
      redis,
      keys,
      queues,
      quarantinePolicy(env),
      quarantineCounter(registry),
      log.child({ component: 'quarantine' }),
    );
    const stores = {
      slots: new SlotStore(redis, keys, slotOptions(env), queues),
      records: new JobRecordStore(redis, keys),
    };
    const timeouts = new JobTimeouts(
      redis,
      keys,
      stores,
      queues,
      metrics,
      {
        maxAttempts: env.SB_MAX_ATTEMPTS,
        perTick: 1000,
        streamCap: env.SB_INBOX_LEN,
        lateToleranceMs: 3 * env.SB_REAPER_INTERVAL_MS + 1000,
        sweepMarginMs: sweepMarginMs(env.SB_REAPER_INTERVAL_MS),
      },
      quarantine,
    );
    const sweep = new JobSweep(keys, stores, queues, metrics, {
      maxAttempts: env.SB_MAX_ATTEMPTS,
      ackTimeoutMs: env.SB_ACK_TIMEOUT_MS,
      marginMs: sweepMarginMs(env.SB_REAPER_INTERVAL_MS),
      perTick: 1000,
    });
    const recount = new SlotRecount(new SlotCountStore(redis, keys), metrics, { sweepTicks: 120 });
    const reaper = new LivenessReaper(
      redis,
      keys,
      queues,
      metrics,
      timeouts,
      recount,
      new RetentionStore(redis, keys),
      { nodeTtlMs: env.SB_NODE_TTL_MS, retentionMs: env.SB_NODE_RETENTION_MS, perTick: 1000 },
    );

    const common = { connection: bull, prefix: keys.queuePrefix, concurrency: env.SB_WORKER_CONCURRENCY };
    const failed = (queue: string) => (job: Job | undefined, err: Error) =>
      log.warn({ queue, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'job failed');
    // the job sweep after the node-side timeouts: what they released is not judged lost
    const livenessWorker = () =>
      new Worker(QUEUE_LIVENESS, async () => ({ ...(await reaper.tick()), moved: await sweep.tick() }), {
        ...common,
        concurrency: 1,
      });
    const observed = (w: Worker): Worker => {
      w.on('failed', failed(w.name));
      logQueueErrors(w, log, { queue: w.name }, 'worker error');
      return w;
    };
    const running: Worker[] = [];
    // a BullMQ worker stuck for good (a blocking connection to a Cluster master that died) is
    // replaced when its queue's jobs wait while it takes none (sb_queue_stalls_total)
    const stalls = queueStallCounter(registry);
    const watchdogLog = log.child({ component: 'queue-watchdog' });
    const watchdogs = [
      // A flush whose process died is found stalled within lockDuration + stalledInterval and
      // runs again; takeDirty hands it the batch the dead one took. Locks renew while alive.
      [
        queues.snapshotFlush,
        () =>
          new Worker<SnapshotFlushJob>(QUEUE_SNAPSHOT_FLUSH, (job) => flusher.flushJob(job.data.shard), {
            ...common,
            // a job holds its shard while busy (mostly waiting between rounds): one per shard at once
            concurrency: Math.max(env.SB_WORKER_CONCURRENCY, keys.shards),
            lockDuration: 5_000,
            stalledInterval: 2_500,
          }),
      ],
    ].map(
      ([queue, make], slot) =>
        new QueueWatchdog(
          queue as Queue,
          () => (running[slot] = observed((make as () => Worker)())),
          stalls,
          watchdogLog,
          queueWatchdogOptions(env.SB_REAPER_INTERVAL_MS),
        ),
    );
    running.push(observed(livenessWorker()));
    const liveness = new Queue(QUEUE_LIVENESS, { connection: bull, prefix: keys.queuePrefix });
    logQueueErrors(liveness, log, { queue: QUEUE_LIVENESS }, 'queue error');
    registerQueueDepths(registry, {
      [QUEUE_SNAPSHOT_FLUSH]: queues.snapshotFlush as Queue,
      [QUEUE_FAILOVER]: queues.failover as Queue,
      [QUEUE_LIVENESS]: liveness,
    });
    // re-created by itself when Redis comes back without it (no worker restart needed)
    const watched = new LivenessSchedule(liveness, redis, metrics, log.child({ component: 'liveness' }), {
      everyMs: env.SB_REAPER_INTERVAL_MS,
      checkEveryMs: Math.min(env.SB_REAPER_INTERVAL_MS, 5_000),
      // a BullMQ worker blocked on a connection to a Cluster master that died never wakes up
      // (cluster-failover fault case): replace it; the stuck one is closed without waiting
      onStalled: () => {
        const at = running.findIndex((w) => w.name === QUEUE_LIVENESS);
        const stuck = running[at];
        if (closing || !stuck) return;
        running[at] = observed(livenessWorker());
        void stuck.close(true).catch(() => undefined);
      },
    });
    await watched.start();
    for (const dog of watchdogs) dog.start();
    schedule = watched;
    workers = running;
    http.serve((req, res) => {
      sendError(
        res,
        new SwitchboardError('NOT_FOUND', `no route ${req.method} ${req.url?.split('?', 1)[0]}`),
      );
    });
    return {
      port: http.port,
      close: () => {
        closing = true;
        watched.close();
        for (const dog of watchdogs) dog.stop();
        return closeBounded({
          redis: [redis, bull],
          graceMs: env.SB_SHUTDOWN_TIMEOUT_MS / 2,
          graceful: async () => {
            await Promise.all(running.map((w) => w.close())); // active jobs finish
            await Promise.all([liveness.close(), queues.close()]);
            await http.close();
          },
          force: () => {
            for (const w of running) void w.disconnect().catch(() => undefined);
            void http.close();
          },
        });
      },
    };
  } catch (err) {
    await http.close();
    await quitRedis();
    throw err;
  }
}

runService(import.meta.url, 'worker', startWorker);
