/**
 * Snapshot scenario: what ONE worker costs and how fresh the published snapshot stays while
 * ONE gateway applies the heartbeat scenario's main-phase load (default 10,000 heartbeats/s
 * from 2,000 nodes): coalescing (deltas per heartbeat, nodes per delta), flush duration and
 * CPU per published node, staleness (worker histogram, and an end-to-end probe measured from
 * outside), the worker's CPU, and the snapshot-flush jobs enqueued.
 *
 * Processes and cores (2-core machine; `taskset`, when present):
 *   core 0: redis-server, the load generator, the worker, this orchestrator (staleness probe)
 *   core 1: the gateway
 * The gateway keeps a core of its own, as in the heartbeat scenario; the worker shares core 0,
 * so its figures include contention with Redis and the load generator (see the CPU line).
 *
 * Phases: start the worker, register N nodes (the worker indexes and publishes them) → wait
 * until it settled → main phase (warm-up + measured window, probes during the window) → stop.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { envSchema } from '../shared/config.ts';
import { KeyBuilder } from '../shared/keys.ts';
import { QUEUE_SNAPSHOT_FLUSH } from '../shared/queues.ts';
import { markQueue, queueActivitySince } from './heartbeat/queue-events.ts';
import {
  startGateway,
  startLoadGenerator,
  startWorker,
  summarizeServiceProfile,
} from './heartbeat/services.ts';
import { beginRun, registerNodes, SHARDS, startBenchRedis, warnIfDisturbed } from './heartbeat/setup.ts';
import { measureStep, type StepContext } from './heartbeat/step.ts';
import { CpuMeter } from './lib/cpu.ts';
import { finalEnvironment } from './lib/environment.ts';
import { watchForExit } from './lib/processes.ts';
import { fmt, progress, RESULTS_DIR, takeWarnings, writeResult } from './lib/report.ts';
import type { ScenarioContext, ScenarioOutcome } from './lib/scenario.ts';
import { StalenessProbe } from './snapshot/probe.ts';
import { evaluateGoals, printSnapshotSummary, type SnapshotResult } from './snapshot/summary.ts';
import {
  markWorker,
  waitForSnapshotSettled,
  workerWindow,
  type WorkerMark,
} from './snapshot/worker-window.ts';

const CORE = { redis: 0, loadgen: 0, worker: 0, orchestrator: 0, gateway: 1 } as const;

/** One probe every ~100 ms, polled every ~2 ms; a jump of 30 cpu points (threshold: 5). */
const PROBE = { intervalMs: 100, pollMs: 2, timeoutMs: 5000, jump: 30 } as const;

export async function run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const o = ctx.options;
  const sup = ctx.supervisor;
  const { startedAt, stamp, environment, pinned, core } = beginRun(CORE.orchestrator);

  // --- setup: Redis, worker, gateway, load generator -------------------------------------
  progress('starting redis-server');
  const redis = await startBenchRedis(sup, core(CORE.redis));
  const { server: redisServer, inspect } = redis;
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const keys = new KeyBuilder(prefix, SHARDS);
  const common = { redisUrl: redisServer.url, prefix, shards: SHARDS };
  progress(`starting the worker${pinned ? ` on core ${CORE.worker}` : ''}`);
  const profileDir = o.profile ? join(RESULTS_DIR, 'profiles', `snapshot-${stamp}`) : null;
  const worker = await startWorker(sup, { ...common, cpu: core(CORE.worker), profileDir });
  progress(`starting the gateway${pinned ? ` on core ${CORE.gateway}` : ''}`);
  const gateway = await startGateway(sup, {
    ...common,
    wsRateLimit: Math.max(50, Math.ceil((2 * o.rate) / o.nodes)),
    cpu: core(CORE.gateway),
    profileDir: null,
    nodeArgs: o.gatewayNodeArgs.split(/\s+/).filter(Boolean),
  });
  const workerMetricsUrl = `http://127.0.0.1:${worker.port}/metrics`;
  const loadgen = startLoadGenerator(sup, core(CORE.loadgen));
  const guard = watchForExit([gateway.proc, worker.proc, loadgen.proc]);
  const cpu = new CpuMeter();
  cpu.track('gateway', gateway.proc.pid);
  cpu.track('worker', worker.proc.pid);
  cpu.track('redis', redisServer.pid);
  cpu.track('loadgen', loadgen.proc.pid);
  const stepCtx: StepContext = {
    loadgen: loadgen.ipc,
    metricsUrl: `http://127.0.0.1:${gateway.port}/metrics`,
    cpu,
  };
  const probeRedis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
  sup.onCleanup('probe client', () => probeRedis.quit());

  const phases = async () => {
    // --- registration, then let the worker publish every node ----------------------------
    progress(`registering ${o.nodes} nodes over WebSocket`);
    const registration = await registerNodes(loadgen, gateway, o.nodes);
    progress(`registered ${registration.nodes} nodes in ${registration.seconds.toFixed(1)} s`);
    const settle = await waitForSnapshotSettled(workerMetricsUrl, inspect, keys, registration.nodes);
    progress(`worker settled in ${settle.seconds.toFixed(1)} s`);
    const flushMark = await markQueue(inspect, keys, QUEUE_SNAPSHOT_FLUSH);

    // --- main phase, with the staleness probe during the measured window ----------------
    progress(
      `main phase: ${fmt.int(o.rate)} heartbeats/s, ${o.warmupS} s warm-up + ${o.durationS} s measured, ` +
        `a staleness probe every ${PROBE.intervalMs} ms`,
    );
    const probe = new StalenessProbe(probeRedis, keys, loadgen.ipc, { nodes: registration.nodes, ...PROBE });
    const window: { start?: WorkerMark; end?: WorkerMark } = {};
    const main = await measureStep(stepCtx, o.rate, o.warmupS, o.durationS, {
      start: async () => {
        window.start = await markWorker(workerMetricsUrl, inspect, keys);
        probe.start();
      },
      end: async () => {
        probe.stop();
        window.end = await markWorker(workerMetricsUrl, inspect, keys);
      },
    });
    const probed = await probe.finish();
    if (!window.start || !window.end) throw new Error('the measured window was not marked');
    const workerStats = workerWindow(window.start, window.end, main);
    const flushQueue = await queueActivitySince(inspect, keys, flushMark);
    progress(
      `main phase: applied ${fmt.int(main.appliedRate)}/s, worker CPU ${fmt.pct(workerStats.cpuPct)}, ` +
        `${fmt.int(workerStats.deltasPerSec)} deltas/s, probe p99 ${fmt.ms(probed.endToEndMs?.p99)}` +
        (main.pass ? '' : ` — did not keep up: ${main.notes.join('; ')}`),
    );
    warnIfDisturbed([['main', main.cpu]]);
    return { registration, settle, main, worker: workerStats, probe: probed, flushQueue };
  };
  const measured = await Promise.race([phases(), guard.failed]);

  progress('stopping');
  guard.disarm();
  await loadgen.close();
  const [gatewayExit, workerExit] = await Promise.all([gateway.stop(), worker.stop()]);
  const profile = profileDir ? summarizeServiceProfile(profileDir, 'worker') : null;

  const gw = envSchema.parse(gateway.env);
  const wk = envSchema.parse(worker.env);
  const result: SnapshotResult = {
    scenario: 'snapshot',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: o,
    environment: finalEnvironment(environment, redis.version, pinned ? CORE : null),
    warnings: takeWarnings(),
    setup: {
      nodes: o.nodes,
      shards: SHARDS,
      gatewayEnv: gateway.env,
      workerEnv: worker.env,
      settings: {
        SB_LOAD_CHANGE_THRESHOLD: gw.SB_LOAD_CHANGE_THRESHOLD,
        SB_SNAPSHOT_MAX_AGE_MS: gw.SB_SNAPSHOT_MAX_AGE_MS,
        SB_FLUSH_DELAY_MS: gw.SB_FLUSH_DELAY_MS,
        SB_FLUSH_BATCH: wk.SB_FLUSH_BATCH,
        SB_WORKER_CONCURRENCY: wk.SB_WORKER_CONCURRENCY,
        SB_REAPER_INTERVAL_MS: wk.SB_REAPER_INTERVAL_MS,
      },
    },
    registration: measured.registration,
    settle: measured.settle,
    main: measured.main,
    worker: measured.worker,
    probe: measured.probe,
    queues: { snapshotFlush: measured.flushQueue },
    exits: { gateway: gatewayExit, worker: workerExit },
    profile,
    goals: [],
  };
  result.goals = evaluateGoals(result);
  printSnapshotSummary(result);
  const resultFile = writeResult('snapshot', result);
  console.log(`\nfull results: ${resultFile}`);
  return { resultFile, goals: result.goals };
}
