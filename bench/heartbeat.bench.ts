/**
 * Heartbeat scenario: how many node heartbeats/s ONE gateway sustains over WebSocket, at what
 * server-side latency, and what share of the raw Redis path (EVALSHA of the same script) that is.
 *
 * Processes and cores (2-core machine; `taskset`, when present):
 *   core 0: redis-server, the load generator (N `ws` clients), this orchestrator (mostly idle)
 *   core 1: the gateway; later, with the gateway idle, the raw EVALSHA baseline
 * The load generator is a separate process so that its CPU is accounted for and never taken
 * from the gateway's core; it shares core 0 with Redis, which is far from saturated at the
 * rates one gateway reaches (see the redis/lg CPU columns).
 *
 * Phases: register N nodes → main phase (offered rate, warm-up + measured window) → raw
 * EVALSHA baseline → max-throughput search (stepped open-loop rates) → cleanup. Pool-index jobs
 * enqueued during the heartbeat phases are counted from the BullMQ events stream (expected 0:
 * capabilities never change). No worker runs, so the snapshot dirty sets never drain.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KeyBuilder } from '../shared/keys.ts';
import { QUEUE_SNAPSHOT_FLUSH } from '../shared/queues.ts';
import { markQueue, queueActivitySince } from './heartbeat/queue-events.ts';
import {
  runBaseline,
  startGateway,
  startLoadGenerator,
  summarizeServiceProfile,
} from './heartbeat/services.ts';
import { rampSearch } from './heartbeat/ramp.ts';
import {
  beginRun,
  registerNodes,
  REGISTER_CONCURRENCY,
  SHARDS,
  startBenchRedis,
  warnIfDisturbed,
} from './heartbeat/setup.ts';
import { measureStep, type StepContext } from './heartbeat/step.ts';
import {
  evaluateGoals,
  gatewayMax,
  GOALS,
  printHeartbeatSummary,
  type HeartbeatResult,
} from './heartbeat/summary.ts';
import { scalePhase } from './heartbeat/scale.ts';
import { CpuMeter } from './lib/cpu.ts';
import { finalEnvironment } from './lib/environment.ts';
import { watchForExit } from './lib/processes.ts';
import { scrape, sumOf } from './lib/prometheus.ts';
import { fmt, progress, RESULTS_DIR, takeWarnings, writeResult } from './lib/report.ts';
import type { ScenarioContext, ScenarioOutcome } from './lib/scenario.ts';

const CORE = { redis: 0, loadgen: 0, orchestrator: 0, gateway: 1, baseline: 1 } as const;

export async function run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const o = ctx.options;
  const sup = ctx.supervisor;
  const { startedAt, stamp, environment, pinned, core } = beginRun(CORE.orchestrator);

  // --- setup: Redis, gateway, load generator ---------------------------------------------
  progress('starting redis-server');
  const redis = await startBenchRedis(sup, core(CORE.redis));
  const { server: redisServer, inspect } = redis;

  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const keys = new KeyBuilder(prefix, SHARDS);
  const profileDir = o.profile ? join(RESULTS_DIR, 'profiles', `heartbeat-${stamp}`) : null;
  progress(`starting the gateway${pinned ? ` on core ${CORE.gateway}` : ''}`);
  const gateway = await startGateway(sup, {
    redisUrl: redisServer.url,
    prefix,
    shards: SHARDS,
    // Per-socket limit well above the per-node rate of the highest step the ramp may offer.
    wsRateLimit: Math.max(50, Math.ceil((2 * Math.max(o.maxRate, o.rate)) / o.nodes)),
    cpu: core(CORE.gateway),
    profileDir,
    nodeArgs: o.gatewayNodeArgs.split(/\s+/).filter(Boolean),
    gcTrace: true,
  });
  const metricsUrl = `http://127.0.0.1:${gateway.port}/metrics`;
  const loadgen = startLoadGenerator(sup, core(CORE.loadgen));
  const guard = watchForExit([gateway.proc, loadgen.proc]);
  const cpu = new CpuMeter();
  cpu.track('gateway', gateway.proc.pid);
  cpu.track('redis', redisServer.pid);
  cpu.track('loadgen', loadgen.proc.pid);
  const stepCtx: StepContext = {
    loadgen: loadgen.ipc,
    metricsUrl,
    cpu,
    gcTrace: gateway.gcTrace ?? undefined,
  };

  const phases = async () => {
    // --- registration ---------------------------------------------------------------------
    progress(`registering ${o.nodes} nodes over WebSocket`);
    const registration = await registerNodes(loadgen, gateway, o.nodes);
    progress(`registered ${registration.nodes} nodes in ${registration.seconds.toFixed(1)} s`);
    const flushMark = await markQueue(inspect, keys, QUEUE_SNAPSHOT_FLUSH);

    // --- main phase -----------------------------------------------------------------------
    progress(
      `main phase: ${fmt.int(o.rate)} heartbeats/s, ${o.warmupS} s warm-up + ${o.durationS} s measured`,
    );
    const main = await measureStep(stepCtx, o.rate, o.warmupS, o.durationS);
    const verdict = main.pass ? '' : ` — did not keep up: ${main.notes.join('; ')}`;
    progress(
      `main phase: applied ${fmt.int(main.appliedRate)}/s, p99 ${fmt.ms(main.latencyMs.p99)}, ` +
        `gateway CPU ${fmt.pct(main.cpu.processes['gateway'])}${verdict}`,
    );

    // --- raw EVALSHA baseline (the gateway idles meanwhile) -------------------------------
    progress(`raw EVALSHA baseline: ${o.baselineWindow} in flight, 1 s warm-up + ${o.baselineS} s measured`);
    const baseline = await runBaseline(sup, cpu, core(CORE.baseline), {
      redisUrl: redisServer.url,
      prefix,
      count: registration.nodes,
      window: o.baselineWindow,
      durationS: o.baselineS,
    });
    progress(
      `raw EVALSHA baseline: ${fmt.int(baseline.callsPerSec)} calls/s, Redis CPU ${fmt.pct(baseline.cpu.processes['redis'])}`,
    );

    // --- gateway max sustained rate -------------------------------------------------------
    const ramp = o.ramp
      ? await rampSearch(stepCtx, {
          start: main,
          maxRate: o.maxRate,
          settleS: o.rampSettleS,
          measureS: o.rampStepS,
          p99GoalMs: GOALS.p99Ms,
          onStep: (rate) => progress(`max-throughput search: offering ${fmt.int(rate)}/s`),
        })
      : null;
    warnIfDisturbed([
      ['main', main.cpu],
      ['baseline', baseline.cpu],
      ...(ramp?.steps.slice(1) ?? []).map((st) => [`ramp ${st.offeredRate}/s`, st.cpu] as const),
    ]);
    const flushQueue = await queueActivitySince(inspect, keys, flushMark);
    const rssBytes = sumOf(await scrape(metricsUrl), 'process_resident_memory_bytes') || null;
    return { registration, main, baseline, ramp, flushQueue, rssBytes };
  };
  const measured = await Promise.race([phases(), guard.failed]);

  progress('stopping');
  guard.disarm();
  await loadgen.close();
  const gatewayExit = await gateway.stop();
  const profile = profileDir ? summarizeServiceProfile(profileDir, 'gateway') : null;

  // --- 1 -> N gateway processes (SB_GATEWAY_PROCESSES), both on cores 0-1 ----------------
  const scaling = o.scale
    ? await scalePhase(sup, o, {
        redisUrl: redisServer.url,
        redisPid: redisServer.pid,
        prefix,
        pinned,
        core,
        p99GoalMs: GOALS.p99Ms,
        startRate: gatewayMax({ ramp: measured.ramp, main: measured.main }) ?? o.rate,
      })
    : null;

  const result: HeartbeatResult = {
    scenario: 'heartbeat',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: o,
    environment: finalEnvironment(environment, redis.version, pinned ? CORE : null),
    warnings: takeWarnings(),
    setup: {
      nodes: o.nodes,
      shards: SHARDS,
      gatewayEnv: gateway.env,
      registerConcurrency: REGISTER_CONCURRENCY,
    },
    registration: measured.registration,
    main: measured.main,
    baseline: measured.baseline,
    ramp: measured.ramp,
    queues: { snapshotFlush: measured.flushQueue },
    gateway: { rssBytes: measured.rssBytes, exit: gatewayExit },
    scaling,
    profile,
    goals: [],
  };
  result.goals = evaluateGoals(result);
  printHeartbeatSummary(result);
  const resultFile = writeResult('heartbeat', result);
  console.log(`\nfull results: ${resultFile}`);
  return { resultFile, goals: result.goals };
}
