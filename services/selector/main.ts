import type { Config } from '../../shared/config.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { Worker, type Queue } from 'bullmq';
import { DerivedWorkQueues, logQueueErrors, QUEUE_FAILOVER, type FailoverJob } from '../../shared/queues.ts';
import { createRedisClient, waitForRedis } from '../../shared/redis-client.ts';
import { checkRedisGuarantees } from '../../shared/redis-guarantees.ts';
import { RedisReachability } from '../../shared/redis-reachability.ts';
import { runService } from '../../shared/service-runner.ts';
import { closeBounded } from '../../shared/shutdown.ts';
import { QueueWatchdog, queueStallCounter, queueWatchdogOptions } from '../../shared/queue-watchdog.ts';
import { JobEvents } from '../../shared/store/job-events.ts';
import { redisTopology } from '../../shared/store/shard-subscriber.ts';
import { httpLimits, ServiceHttp } from '../../shared/service-http.ts';
import { JobPlacer } from './job-placer.ts';
import { JobReadStore } from '../../shared/store/job-reads.ts';
import { JobShardStore } from '../../shared/store/job-shard.ts';
import { PlacingRecovery } from '../../shared/store/placing-recovery.ts';
import { SessionStore } from '../../shared/store/sessions.ts';
import { SlotStore } from '../../shared/store/slots.ts';
import { sweepMarginMs } from '../../shared/open-jobs.ts';
import { createSelectorApi } from './selector-api.ts';
import { fleetFigures } from './fleet-gauges.ts';
import { createSelectorMetrics, setFleetGauges } from './selector-metrics.ts';
import { SnapshotIndex } from './snapshot-index.ts';
import { SnapshotReplica } from './snapshot-replica.ts';
import { LagWindow } from './lag-window.ts';

export interface SelectorService {
  port: number;
  close(): Promise<void>;
}

/**
 * Composition root of the selector: config → clients (connecting) → HTTP (alive, not ready
 * yet) → wait for Redis, however long → replica → placer → serve the API. Resolves once it
 * serves.
 */
export async function startSelector(config: Config, log: Logger): Promise<SelectorService> {
  const env = config.env;
  const keys = new KeyBuilder(config.prefix, config.shards);
  const registry = createMetricsRegistry('selector');
  const metrics = createSelectorMetrics(registry);
  const index = new SnapshotIndex();
  let replica: SnapshotReplica | undefined;
  let events: JobEvents | undefined;
  let closing = false;
  const reachability = new RedisReachability(config.redis, log.child({ component: 'redis' }));
  const redis = createRedisClient(config, log, { name: 'selector', mode: 'fail-fast', reachability });
  const tail = createRedisClient(config, log, { name: 'selector-replica', mode: 'blocking', reachability });
  const queueRedis = createRedisClient(config, log, {
    name: 'selector-queues',
    mode: 'fail-fast',
    reachability,
  });
  const quitRedis = () => Promise.allSettled([redis.quit(), tail.quit(), queueRedis.quit()]);
  const http = await ServiceHttp.listen(env.PORT ?? 8081, env.HOST, {
    service: 'selector',
    limits: { ...httpLimits(env) },
    registry,
    readyTimeoutMs: env.SB_REDIS_COMMAND_TIMEOUT_MS,
    isReady: async () => !closing && replica?.ready === true && (await redis.ping()) === 'PONG',
    beforeScrape: () => {
      metrics.replicaNodes.set(index.size);
      setFleetGauges(metrics, fleetFigures(index));
      metrics.jobWaiters.set(events?.waiters ?? 0);
    },
  }).catch(async (err: unknown) => {
    await quitRedis();
    throw err;
  });
  try {
    await waitForRedis([redis, tail, queueRedis]);
    void checkRedisGuarantees(redis, log.child({ component: 'redis' })); // one warning line if not
    const lag = new LagWindow();
    const lastChange = new Map<string, number>();
    const loaded = new SnapshotReplica(tail, keys, index, {
      log: log.child({ component: 'snapshot-replica' }),
      // pipeline lag: a change received (server time the heartbeat or registration marked the
      // node dirty) → visible to this selector's choices; once per change (an entry republished
      // for a reservation or drain carries the same changedAt and is not counted again)
      onApplied: (_shard, _version, entries) => {
        const now = Date.now();
        for (const e of entries) {
          const changedAt = e.changedAt ?? 0;
          if (changedAt <= (lastChange.get(e.id) ?? 0)) continue;
          lastChange.set(e.id, changedAt);
          const ms = Math.max(0, now - changedAt);
          lag.add(ms);
          metrics.replicaLag.observe(ms / 1000);
        }
      },
    });
    replica = loaded;
    await loaded.start();

    // one subscription per job shard; requests waiting for a job are woken by its announcements
    const jobEvents = new JobEvents(
      keys,
      redisTopology(config, redis, log, 'selector-events', reachability),
      {
        maxWaiters: env.SB_MAX_JOB_WAITERS,
        fallbackMs: env.SB_JOB_EVENTS_FALLBACK_MS,
        onWake: (cause) => metrics.jobWakeups.inc({ cause }),
        onShed: () => metrics.jobWaitersShed.inc(),
      },
      log.child({ component: 'job-events' }),
    );
    events = jobEvents;
    jobEvents.start();

    const queues = new DerivedWorkQueues(queueRedis, keys, log);
    // a live placement goes from claim (or re-point) to its reservation within two command
    // timeouts: past 4x + 1 s recovery settles it (placed, or dropped and the id retryable)
    const timeoutMs = env.SB_REDIS_COMMAND_TIMEOUT_MS > 0 ? env.SB_REDIS_COMMAND_TIMEOUT_MS : 10_000;
    const placingWindowMs = 4 * timeoutMs + 1000;
    const jobs = new JobShardStore(redis, keys, {
      retentionMs: env.SB_JOB_RETENTION_MS,
      placingWindowMs,
      // the job sweep's first look at a placed job (claimJob enters it in :open)
      openLookMs: env.SB_ACK_TIMEOUT_MS + sweepMarginMs(env.SB_REAPER_INTERVAL_MS),
    });
    const slots = new SlotStore(
      redis,
      keys,
      { ackTimeoutMs: env.SB_ACK_TIMEOUT_MS, nodeTtlMs: env.SB_NODE_TTL_MS, inboxLength: env.SB_INBOX_LEN },
      queues,
    );
    const recovery = new PlacingRecovery(keys, jobs, slots, {
      fenceTtlMs: Math.max(60_000, 4 * placingWindowMs),
    });
    recovery.start(Math.min(1000, placingWindowMs), log.child({ component: 'placing-recovery' }));
    const placer = new JobPlacer(
      { jobs, slots, sessions: new SessionStore(redis, keys, env.SB_SESSION_TTL_MS), recovery },
      index,
      (shard) => loaded.shardState(shard),
      (nodeId) => keys.shardOf(nodeId),
      metrics,
      {
        policy: {
          strategy: env.SB_SELECT_STRATEGY,
          resourceThreshold: env.SB_RESOURCE_THRESHOLD,
          affinity: env.SB_AFFINITY,
        },
        maxReservationAttempts: env.SB_RESERVATION_ATTEMPTS,
        jobTimeoutMs: env.SB_JOB_TIMEOUT_MS,
        maxJobTimeoutMs: env.SB_MAX_JOB_TIMEOUT_MS,
        faultPauseMs: env.SB_FAULT_PLACE_PAUSE_MS,
      },
    );
    // The worker finds timed-out attempts; a selector (it holds the snapshot) places the next one.
    // replaced when failover jobs wait while it takes none (stuck on a dead connection)
    const failoverWatchdog = new QueueWatchdog(
      queues.failover as Queue,
      () => {
        const w = new Worker<FailoverJob>(QUEUE_FAILOVER, (job) => placer.failover(job.data), {
          connection: tail,
          prefix: keys.queuePrefix,
          concurrency: env.SB_WORKER_CONCURRENCY,
        });
        logQueueErrors(w, log, { queue: QUEUE_FAILOVER }, 'failover worker error');
        return w;
      },
      queueStallCounter(registry),
      log.child({ component: 'queue-watchdog' }),
      queueWatchdogOptions(env.SB_REAPER_INTERVAL_MS),
    );
    failoverWatchdog.start();
    const api = createSelectorApi({
      auth: config.auth,
      placer,
      jobs: new JobReadStore(redis, keys),
      events: jobEvents,
      index,
      redis,
      keys,
      queues,
      snapshot: () => {
        const status = loaded.status();
        return {
          nodes: index.size,
          shards: status.shards,
          reloads: status.reloads,
          lag_ms: lag.quantiles(),
        };
      },
      isClosing: () => closing,
      metrics,
      maxMessageBytes: env.SB_MAX_MESSAGE_BYTES,
      feedCap: env.SB_INBOX_LEN,
      log: log.child({ component: 'selector-api' }),
      consoleSessionTtlMs: env.SB_CONSOLE_SESSION_TTL_MS,
      consoleLoginRate: env.SB_CONSOLE_LOGIN_RATE,
      consoleDir: env.SB_CONSOLE_DIR ?? null,
      jaegerUrl: env.SB_JAEGER_URL ?? null,
      queueRedis,
    });
    http.serve(api.app);
    return {
      port: http.port,
      close: () => {
        closing = true;
        jobEvents.stop(); // waiting requests answer what they have now
        return closeBounded({
          redis: [redis, tail, queueRedis],
          graceMs: env.SB_SHUTDOWN_TIMEOUT_MS / 2,
          graceful: async () => {
            const closed = new Promise<void>((resolve) => http.server.close(() => resolve()));
            http.server.closeIdleConnections(); // requests in flight are answered first
            await closed;
            failoverWatchdog.stop();
            await failoverWatchdog.current.close();
            await recovery.stop();
            await jobs.flushConfirmations();
            await loaded.close();
            await api.close();
            await queues.close();
            jobEvents.close();
          },
          force: () => {
            http.server.closeAllConnections();
            failoverWatchdog.stop();
            void failoverWatchdog.current.disconnect().catch(() => undefined);
            void recovery.stop();
            void loaded.close();
            jobEvents.close();
          },
        });
      },
    };
  } catch (err) {
    events?.close();
    await replica?.close();
    await http.close();
    await quitRedis();
    throw err;
  }
}

runService(import.meta.url, 'selector', startSelector);
