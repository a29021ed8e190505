/**
 * Jobs scenario ("Job lifecycle and the node agent"): end-to-end job latency at a fixed
 * open-loop rate (default 500 jobs/s) with a fleet of simulated node agents (default 1,000),
 * over real Redis, gateway, worker and selector processes.
 *
 * Per job, from the moment its POST /v1/jobs is sent:
 *   (a) → job_assign received by the node (the fleet stamps each receipt; joined by job id),
 *   (b) → result visible (GET /v1/jobs/:id?wait_ms= returned `finished`),
 * plus the job record's own stage timestamps (created, dispatched, accepted, started,
 * finished), status codes, finished / failed, reservation conflicts, timeouts
 * (`sb_job_timeouts_total` on the worker) and the CPU of every process.
 *
 * Processes and cores (2-core machine; `taskset`, when present):
 *   core 0: redis-server, worker, the fleet (one process, N NodeAgents), the job client, this orchestrator
 *   core 1: selector, gateway
 * The machine has only 2 cores, so everything shares them: the job path crosses both cores
 * several times (selector → Redis → gateway → fleet → gateway → Redis → selector → client).
 *
 * Every service setting is at its default (heartbeats every 15 s, ack timeout 10 s, job
 * timeout 30 s, 3 attempts). Nodes run jobs of a fixed 40 ms (`agent/simulated-job.ts`,
 * sigma 0) with max_concurrent_jobs 8: at 500 jobs/s ~20 jobs run at once over 8,000 slots, so
 * none is refused for capacity. Why 40 and not 50: the selector's long-poll re-reads the job
 * record every 50 ms from the GET's start (just after the 201), so a 50 ms job finishes right
 * at the second re-read and (b) flips between ~55 and ~105 ms on sub-ms timing; 40 ms leaves
 * ~10 ms of margin (the stage table shows stored → seen separately).
 *
 * `--rate`, `--nodes` and `--duration` mean jobs/s, nodes and measured seconds here; when not
 * given (flag or BENCH_* variable) this scenario uses its own defaults (500, 1,000, 15 s;
 * --quick: 100, 200, 5 s) instead of the heartbeat scenario's.
 */
import { randomBytes } from 'node:crypto';
import { envSchema } from '../shared/config.ts';
import { KeyBuilder } from '../shared/keys.ts';
import { type FleetSummary } from '../agent/fleet-simulator.ts';
import { beginRun, SHARDS, startBenchRedis, warnIfDisturbed } from './heartbeat/setup.ts';
import { CpuMeter } from './lib/cpu.ts';
import { finalEnvironment } from './lib/environment.ts';
import { watchForExit } from './lib/processes.ts';
import { byLabel, sumOf } from './lib/prometheus.ts';
import { fmt, progress, takeWarnings, warn, writeResult } from './lib/report.ts';
import type { ScenarioContext, ScenarioOutcome } from './lib/scenario.ts';
import { analyzeJobs } from './jobs/analysis.ts';
import type { ClientTotals, JobRecord } from './jobs/client.child.ts';
import type { AssignRecord } from './jobs/fleet.child.ts';
import type { LoopDelay } from './jobs/loop-delay.ts';
import { JOB_MIX } from './jobs/job-mix.ts';
import { markServices, serviceWindow, type ServiceMark } from './jobs/metrics.ts';
import { checkClock, newSecrets, startChild, startService, type Deployment } from './jobs/services.ts';
import { inspectUnresolved } from './jobs/stuck.ts';
import { evaluateGoals, printJobsSummary, type JobsResult, type JobsSettings } from './jobs/summary.ts';

const CORE = {
  redis: 0,
  worker: 0,
  fleet: 0,
  client: 0,
  orchestrator: 0,
  selector: 1,
  gateway: 1,
} as const;

const JOB_MS = 40;
const MAX_JOBS = 8;
const WAIT_MS = 10_000;
/**
 * Keep-alive sockets of the client's long-polls (POSTs have their own 128): enough for one per
 * open job, so a job that never ends does not make later jobs wait for a socket (with a pool of
 * 256, such jobs held every socket for their 10 s wait_ms and (b) grew to seconds).
 */
const GET_SOCKETS = 4096;
/**
 * A placed job not finished by then is counted unresolved, then classified from Redis (still
 * held by a node, or stuck for good). Healthy jobs end within a second here; a legitimate
 * failover would take SB_ACK_TIMEOUT_MS (10 s) or SB_JOB_TIMEOUT_MS (30 s) and is visible in
 * the worker's timeouts. Kept short because every open long-poll costs the selector an HGETALL
 * every 50 ms.
 */
const GIVE_UP_MS = 15_000;
const FLEET_SEED = 42;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** True when the user set the option (flag or environment variable) rather than leaving its default. */
function given(flag: string, env: string): boolean {
  return (
    process.argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`)) ||
    (process.env[env] ?? '') !== ''
  );
}

function settingsOf(ctx: ScenarioContext): JobsSettings {
  const o = ctx.options;
  const nodes = given('nodes', 'BENCH_NODES') ? o.nodes : o.quick ? 200 : 1000;
  return {
    nodes,
    rate: given('rate', 'BENCH_RATE') ? o.rate : o.quick ? 100 : 500,
    durationS: given('duration', 'BENCH_DURATION_S') ? o.durationS : o.quick ? 5 : 15,
    warmupS: o.warmupS,
    jobMs: JOB_MS,
    maxJobs: MAX_JOBS,
    waitMs: WAIT_MS,
    giveUpMs: GIVE_UP_MS,
    fleetSeed: FLEET_SEED,
    rampUpMs: nodes * 2,
  };
}

/** Polls GET /v1/nodes until the selector's replica holds `count` ready nodes. */
async function waitForReadyReplica(url: string, apiKey: string, count: number, deadlineMs = 120_000) {
  const started = performance.now();
  let last = { nodes: 0, ready: 0 };
  while (performance.now() - started < deadlineMs) {
    const res = await fetch(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${apiKey}` } });
    if (res.ok) {
      const body = (await res.json()) as { nodes: { status: string }[] };
      last = { nodes: body.nodes.length, ready: body.nodes.filter((n) => n.status === 'ready').length };
      if (last.ready >= count) return (performance.now() - started) / 1000;
    }
    await sleep(250);
  }
  throw new Error(
    `the selector's replica holds ${last.nodes} nodes, ${last.ready} ready, of ${count} after ${deadlineMs / 1000} s`,
  );
}

export async function run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const o = ctx.options;
  const sup = ctx.supervisor;
  const s = settingsOf(ctx);
  const { startedAt, environment, pinned, core } = beginRun(CORE.orchestrator);

  // --- services: Redis, worker (core 0); gateway, selector (core 1) -----------------------
  progress('starting redis-server');
  const redis = await startBenchRedis(sup, core(CORE.redis));
  const d: Deployment = {
    redisUrl: redis.server.url,
    prefix: `bench${randomBytes(4).toString('hex')}`,
    shards: SHARDS,
    secrets: newSecrets(),
  };
  progress(
    `starting worker${pinned ? ` (core ${CORE.worker})` : ''}, gateway and selector` +
      `${pinned ? ` (core ${CORE.gateway})` : ''}`,
  );
  const worker = await startService(sup, 'worker', d, core(CORE.worker));
  const gateway = await startService(sup, 'gateway', d, core(CORE.gateway));
  const selector = await startService(sup, 'selector', d, core(CORE.selector));
  const services = [gateway, worker, selector];
  const selectorUrl = `http://127.0.0.1:${selector.port}`;
  const fleet = startChild(sup, 'fleet', 'bench/jobs/fleet.child.ts', core(CORE.fleet));
  const client = startChild(sup, 'job client', 'bench/jobs/client.child.ts', core(CORE.client));
  const guard = watchForExit([...services.map((x) => x.proc), fleet.proc, client.proc]);
  const cpu = new CpuMeter();
  for (const x of services) cpu.track(x.name, x.proc.pid);
  cpu.track('redis', redis.server.pid);
  cpu.track('fleet', fleet.proc.pid);
  cpu.track('client', client.proc.pid);

  const phases = async () => {
    // --- the fleet: N node agents, all registered and ready in the selector's replica ----
    progress(
      `fleet: ${fmt.int(s.nodes)} simulated nodes (max_concurrent_jobs ${s.maxJobs}, ${s.jobMs} ms jobs)` +
        `${pinned ? ` on core ${CORE.fleet}` : ''}, connecting over ${(s.rampUpMs / 1000).toFixed(1)} s`,
    );
    const reg = await fleet.ipc.request<{ registered: number; ms: number }>(
      'start',
      {
        url: `ws://127.0.0.1:${gateway.port}/ws/node`,
        token: d.secrets.SB_JOIN_TOKEN,
        nodes: s.nodes,
        maxJobs: s.maxJobs,
        jobMs: s.jobMs,
        seed: s.fleetSeed,
        rampUpMs: s.rampUpMs,
      },
      180_000,
    );
    const readyS = await waitForReadyReplica(selectorUrl, d.secrets.SB_API_KEY, s.nodes);
    progress(
      `fleet: ${fmt.int(reg.registered)} registered in ${(reg.ms / 1000).toFixed(1)} s, ` +
        `all ready in the selector's replica ${readyS.toFixed(1)} s later`,
    );
    const clocks = { fleet: await checkClock(fleet.ipc), client: await checkClock(client.ipc) };
    for (const [name, c] of Object.entries(clocks)) {
      if (Math.abs(c.offsetMs) > 1 + c.uncertaintyMs || Math.abs(c.hrMinusWallMs) > 2) {
        warn(
          `${name} clock: offset ${c.offsetMs.toFixed(3)} ± ${c.uncertaintyMs.toFixed(3)} ms, ` +
            `hi-res − Date.now() ${c.hrMinusWallMs.toFixed(3)} ms: cross-process latencies are off by that much`,
        );
      }
    }
    const runStart = await markServices(services);

    // --- open-loop jobs: warm-up, measured window, then every measured job resolved -------
    progress(
      `jobs: ${fmt.int(s.rate)}/s offered open loop (mix ${JOB_MIX.map((k) => k.name).join(', ')}), ` +
        `${s.warmupS} s warm-up + ${s.durationS} s measured`,
    );
    const windowStart = client.ipc.once('window-start', (s.warmupS + 30) * 1000);
    const windowEnd = client.ipc.once('window-end', (s.warmupS + s.durationS + 60) * 1000);
    for (const p of [windowStart, windowEnd]) p.catch(() => undefined);
    await client.ipc.request('start', {
      url: selectorUrl,
      apiKey: d.secrets.SB_API_KEY,
      rate: s.rate,
      warmupS: s.warmupS,
      durationS: s.durationS,
      runId: `jb${randomBytes(3).toString('hex')}`,
      waitMs: s.waitMs,
      giveUpMs: s.giveUpMs,
      getSockets: GET_SOCKETS,
    });
    const mark = async () => {
      const c = cpu.snapshot();
      const [svc, fleetLoop, clientLoop, fleetSummary] = await Promise.all([
        markServices(services),
        fleet.ipc.request<LoopDelay>('loop'),
        client.ipc.request<LoopDelay>('loop'),
        fleet.ipc.request<FleetSummary | null>('summary'),
      ]);
      return { cpu: c, svc, loop: { fleet: fleetLoop, client: clientLoop }, fleetSummary };
    };
    await windowStart;
    const a = await mark();
    progress('measured window open');
    await windowEnd;
    const b = await mark();
    progress('measured window closed; waiting for its jobs to finish');
    const finished = await client.ipc.request<{ records: JobRecord[]; totals: ClientTotals }>(
      'finish',
      { deadlineMs: s.giveUpMs + 5000 },
      s.giveUpMs + 30_000,
    );
    await sleep(500); // the last results' releases
    const runEnd = await markServices(services);
    const taken = await fleet.ipc.request<{
      records: AssignRecord[];
      counts: JobsResult['fleetAssigns'];
    }>('take');
    const assigns = new Map(taken.records.map((x) => [x.jobId, x]));
    const unresolved = await inspectUnresolved(
      redis.inspect,
      new KeyBuilder(d.prefix, d.shards),
      finished.records.filter((x) => x.final === 'unresolved').map((x) => x.id),
    );
    if (unresolved.stuck > 0) {
      // How long before the selector recorded the dispatch its node had the job (> the job's
      // duration: the job_result arrived while the record had no attempt yet, dropped as stale).
      const leads = unresolved.stuckJobs.map((j) => {
        const a = assigns.get(j.id);
        return a && j.dispatchedAt !== null ? `${(j.dispatchedAt - a.at).toFixed(0)} ms` : '?';
      });
      warn(
        `${unresolved.stuck} placed jobs will never end (not finished or failed, their attempt held by no node); ` +
          `job_assign received before the dispatch was recorded by: ${leads.join(', ')}`,
      );
    }
    if (finished.totals.getsInFlightMax > GET_SOCKETS) {
      warn(
        `up to ${finished.totals.getsInFlightMax} GETs in flight over ${GET_SOCKETS} sockets: ` +
          `(b) includes waits in the job client's connection pool`,
      );
    }
    const { counts, latency } = analyzeJobs(finished.records, assigns);
    const windowCpu = CpuMeter.usage(a.cpu, b.cpu);
    warnIfDisturbed([['measured window', windowCpu]]);
    progress(
      `window: ${fmt.int(counts.measured)} jobs, (a) assign p50 ${fmt.ms(latency.submitToAssign?.p50)} ` +
        `p99 ${fmt.ms(latency.submitToAssign?.p99)}, (b) visible p50 ${fmt.ms(latency.submitToVisible?.p50)} ` +
        `p99 ${fmt.ms(latency.submitToVisible?.p99)}`,
    );
    return {
      fleetStart: { registered: reg.registered, seconds: reg.ms / 1000, readyInSelectorS: readyS },
      clocks,
      window: {
        seconds: (b.cpu.at - a.cpu.at) / 1000,
        cpu: windowCpu,
        services: serviceWindow(a.svc, b.svc),
        loop: b.loop,
        fleetBefore: a.fleetSummary,
        fleetAfter: b.fleetSummary,
      },
      wholeRun: wholeRun(runStart, runEnd),
      client: finished.totals,
      unresolved,
      counts,
      latency,
      fleetAssigns: taken.counts,
    };
  };
  const measured = await Promise.race([phases(), guard.failed]);

  progress('stopping');
  guard.disarm();
  await client.close();
  await fleet.close();
  const [gatewayExit, workerExit, selectorExit] = await Promise.all(services.map((x) => x.stop()));

  const eff = envSchema.parse(gateway.env);
  const result: JobsResult = {
    scenario: 'jobs',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: o,
    settings: s,
    environment: finalEnvironment(environment, redis.version, pinned ? CORE : null),
    warnings: takeWarnings(),
    setup: {
      shards: SHARDS,
      env: Object.fromEntries(services.map((x) => [x.name, x.env])),
      serviceSettings: {
        SB_HEARTBEAT_INTERVAL_MS: eff.SB_HEARTBEAT_INTERVAL_MS,
        SB_ACK_TIMEOUT_MS: eff.SB_ACK_TIMEOUT_MS,
        SB_JOB_TIMEOUT_MS: eff.SB_JOB_TIMEOUT_MS,
        SB_MAX_ATTEMPTS: eff.SB_MAX_ATTEMPTS,
        SB_SELECT_STRATEGY: eff.SB_SELECT_STRATEGY,
        SB_RESOURCE_THRESHOLD: eff.SB_RESOURCE_THRESHOLD,
        SB_RESERVATION_ATTEMPTS: eff.SB_RESERVATION_ATTEMPTS,
        SB_FLUSH_DELAY_MS: eff.SB_FLUSH_DELAY_MS,
        SB_LOAD_CHANGE_THRESHOLD: eff.SB_LOAD_CHANGE_THRESHOLD,
        SB_REAPER_INTERVAL_MS: eff.SB_REAPER_INTERVAL_MS,
        SB_WORKER_CONCURRENCY: eff.SB_WORKER_CONCURRENCY,
      },
      jobMix: JOB_MIX.map(({ name, servedBy }) => ({ name, servedBy })),
    },
    ...measured,
    exits: { gateway: gatewayExit ?? null, worker: workerExit ?? null, selector: selectorExit ?? null },
    goals: [],
  };
  result.goals = evaluateGoals(result);
  printJobsSummary(result);
  const resultFile = writeResult('jobs', result);
  console.log(`\nfull results: ${resultFile}`);
  return { resultFile, goals: result.goals };
}

function wholeRun(a: ServiceMark, b: ServiceMark): JobsResult['wholeRun'] {
  const timeouts: Record<string, number> = {};
  const before = byLabel(a.worker, 'sb_job_timeouts_total', 'reason');
  for (const [reason, n] of Object.entries(byLabel(b.worker, 'sb_job_timeouts_total', 'reason'))) {
    timeouts[reason] = n - (before[reason] ?? 0);
  }
  return {
    timeouts,
    reservationConflicts:
      sumOf(b.selector, 'sb_reservation_conflicts_total') -
      sumOf(a.selector, 'sb_reservation_conflicts_total'),
    reconciled: sumOf(b.worker, 'sb_slots_reconciled_total') - sumOf(a.worker, 'sb_slots_reconciled_total'),
  };
}
