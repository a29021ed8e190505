/**
 * Selector scenario: how fast ONE selector chooses and places jobs, and how well it is isolated
 * from heartbeat storms.
 *
 *  1. In-process choice: select() over a SnapshotIndex of 10,000 synthetic nodes (12 capability
 *     profiles, varied status and load), per kind of request, in this process before anything
 *     else starts (pinned to core 0, the rest of the machine idle).
 *  2. POST /v1/jobs end to end at a fixed open-loop rate (default 1,000/s) with real Redis,
 *     gateway, worker, ONE selector and N nodes registered over WebSocket (default 1,000), with
 *     no heartbeats: client-side latency over keep-alive, the selector's own histograms,
 *     statuses and reservation conflicts.
 *  3. Isolation: the same job load during a heartbeat storm (every node at once, repeatedly, at
 *     the gateway's max sustained rate in this layout with the jobs flowing, found first by a
 *     ramp) ÷ the quiet window; a second quiet window after the storm shows drift.
 *
 * Processes and cores (2-core machine; `taskset`, when present):
 *   core 0: redis-server, gateway, worker, load generator (node sockets), job client, orchestrator
 *   core 1: the selector alone (and a Redis PING probe, ~1 % of a core)
 * The storm and everything it drives share core 0; the selector never shares a core with it.
 * The job client (HTTP, ~8 % of a core at 1,000 jobs/s) shares core 0 too, so that the selector
 * has its core to itself (it needs 55–70 % of it at that rate). Client-side latencies therefore
 * include core 0's contention during the storm; the selector's own histograms do not.
 *
 * The simulated nodes never ack a job_assign. Left at its default (10 s), SB_ACK_TIMEOUT_MS
 * would have the worker release every reservation 10 s later and fail the job over (job_cancel,
 * then a selector places the next attempt, up to SB_MAX_ATTEMPTS): from then on the selector
 * would place each job three times, which is not the load under test. So reservations live for
 * an hour (SB_ACK_TIMEOUT_MS on every service), and with nothing released, nodes register with
 * max_concurrent_jobs = 10,000 (the schema's maximum): 1,000 nodes hold 10 M slots, the run
 * takes ~150 k. SB_NODE_TTL_MS is raised to 10 minutes on every service: the quiet windows
 * send no heartbeat at all, and the default 45 s would let the reaper take nodes offline.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KeyBuilder } from '../shared/keys.ts';
import { rampSearch } from './heartbeat/ramp.ts';
import {
  newSecrets,
  nodeChild,
  startGateway,
  startLoadGenerator,
  startSelector,
  startWorker,
  summarizeServiceProfile,
} from './heartbeat/services.ts';
import { beginRun, registerNodes, SHARDS, startBenchRedis, warnIfDisturbed } from './heartbeat/setup.ts';
import { measureStep, type StepContext } from './heartbeat/step.ts';
import { CpuMeter } from './lib/cpu.ts';
import { finalEnvironment } from './lib/environment.ts';
import { IpcClient } from './lib/ipc.ts';
import { watchForExit } from './lib/processes.ts';
import { fmt, progress, RESULTS_DIR, takeWarnings, warn, writeResult } from './lib/report.ts';
import type { ScenarioContext, ScenarioOutcome } from './lib/scenario.ts';
import { measureChoice } from './selector/choice.ts';
import { JOB_KINDS } from './selector/job-kinds.ts';
import { evaluateGoals, printSelectorSummary, type SelectorResult } from './selector/summary.ts';
import { JobWindow, type JobWindowContext } from './selector/window.ts';

const CORE = {
  orchestrator: 0,
  choice: 0,
  redis: 0,
  gateway: 0,
  worker: 0,
  loadgen: 0,
  jobClient: 0,
  selector: 1,
  pinger: 1,
} as const;

/** max_concurrent_jobs of every node (the schema's maximum): see the module comment. */
const MAX_JOBS = 10_000;
const NODE_TTL_MS = 600_000;
/** No reservation expires during a run (the nodes never ack): see the module comment. */
const ACK_TIMEOUT_MS = 3_600_000;
/** The storm-rate search starts here (heartbeats/s, in bursts of one per node). */
const STORM_SEARCH_START = 4000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls GET /v1/nodes until the selector's replica has `count` nodes, all ready. */
async function waitForReadyReplica(url: string, apiKey: string, count: number, deadlineMs = 120_000) {
  const started = performance.now();
  let last = { nodes: 0, ready: 0 };
  while (performance.now() - started < deadlineMs) {
    const res = await fetch(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${apiKey}` } });
    if (res.ok) {
      const body = (await res.json()) as { nodes: { status: string }[] };
      last = { nodes: body.nodes.length, ready: body.nodes.filter((n) => n.status === 'ready').length };
      if (last.ready >= count) return { seconds: (performance.now() - started) / 1000, ...last };
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
  const { startedAt, stamp, environment, pinned, core } = beginRun(CORE.orchestrator);

  // --- 1. in-process choice, before any other process of ours runs ------------------------
  const warmupCalls = Math.max(200, Math.round(o.choiceCalls / 4));
  progress(
    `in-process choice: ${fmt.int(o.choiceNodes)} synthetic nodes, ${fmt.int(warmupCalls)} warm-up + ` +
      `${fmt.int(o.choiceCalls)} timed calls per request kind${pinned ? ` on core ${CORE.choice}` : ''}`,
  );
  const choiceCpu = new CpuMeter();
  const choiceA = choiceCpu.snapshot();
  const choice = await measureChoice(o.choiceNodes, o.choiceCalls, warmupCalls);
  const choiceUsage = CpuMeter.usage(choiceA, choiceCpu.snapshot());
  progress(
    `in-process choice: mix p50 ${fmt.int(choice.all.p50)} µs, p99 ${fmt.int(choice.all.p99)} µs, ` +
      `${fmt.int(choice.allCpuUsMean)} µs of CPU per call ` +
      `(${choice.seconds.toFixed(1)} s, other ${fmt.pct(choiceUsage.unaccountedPct)})`,
  );
  warnIfDisturbed([['in-process choice', choiceUsage]]);

  // --- 2. services ------------------------------------------------------------------------
  progress('starting redis-server');
  const redis = await startBenchRedis(sup, core(CORE.redis));
  const { server: redisServer, inspect } = redis;
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const keys = new KeyBuilder(prefix, SHARDS);
  const common = { redisUrl: redisServer.url, prefix, shards: SHARDS };
  // delivery is acceptance for these nodes (no acks_jobs): without a long job timeout every job
  // would time out after SB_JOB_TIMEOUT_MS, fail over and quarantine its node mid-run
  const ttl = {
    SB_NODE_TTL_MS: String(NODE_TTL_MS),
    SB_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
    SB_JOB_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
    SB_MAX_JOB_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
  };
  const secrets = newSecrets();
  const profileDir = o.profile ? join(RESULTS_DIR, 'profiles', `selector-${stamp}`) : null;

  progress(`starting the worker and the gateway${pinned ? ` on core ${CORE.gateway}` : ''}`);
  const worker = await startWorker(sup, {
    ...common,
    cpu: core(CORE.worker),
    profileDir: null,
    extraEnv: ttl,
  });
  const gateway = await startGateway(sup, {
    ...common,
    wsRateLimit: Math.max(50, Math.ceil((2 * Math.max(o.maxRate, o.stormRate)) / o.jobNodes)),
    cpu: core(CORE.gateway),
    profileDir: null,
    nodeArgs: o.gatewayNodeArgs.split(/\s+/).filter(Boolean),
    secrets,
    extraEnv: ttl,
  });
  progress(`starting the selector${pinned ? ` on core ${CORE.selector}` : ''}`);
  const selector = await startSelector(sup, {
    ...common,
    cpu: core(CORE.selector),
    profileDir,
    secrets,
    extraEnv: ttl,
  });
  const selectorUrl = `http://127.0.0.1:${selector.port}`;
  const loadgen = startLoadGenerator(sup, core(CORE.loadgen));
  const clientProc = sup.spawn(
    nodeChild('job client', 'bench/selector/job-client.child.ts', core(CORE.jobClient)),
  );
  const client = new IpcClient(clientProc.child, 'job client');
  const stopClient = sup.onCleanup('job client', () => clientProc.stop('SIGTERM', 3000));
  const pingerProc = sup.spawn(
    nodeChild('redis probe', 'bench/selector/redis-ping.child.ts', core(CORE.pinger)),
  );
  const pinger = new IpcClient(pingerProc.child, 'redis probe');
  const stopPinger = sup.onCleanup('redis probe', () => pingerProc.stop('SIGTERM', 3000));
  const guard = watchForExit([
    gateway.proc,
    worker.proc,
    selector.proc,
    loadgen.proc,
    clientProc,
    pingerProc,
  ]);

  const cpu = new CpuMeter();
  cpu.track('selector', selector.proc.pid);
  cpu.track('jobclient', clientProc.pid);
  cpu.track('pinger', pingerProc.pid);
  cpu.track('gateway', gateway.proc.pid);
  cpu.track('worker', worker.proc.pid);
  cpu.track('redis', redisServer.pid);
  cpu.track('loadgen', loadgen.proc.pid);
  const gatewayMetricsUrl = `http://127.0.0.1:${gateway.port}/metrics`;
  const stormCtx: StepContext = {
    loadgen: loadgen.ipc,
    metricsUrl: gatewayMetricsUrl,
    cpu,
    startArgs: { burst: true },
  };
  const windowCtx: JobWindowContext = {
    client,
    pinger,
    selectorUrl,
    apiKey: secrets.SB_API_KEY,
    gatewayMetricsUrl,
    workerMetricsUrl: `http://127.0.0.1:${worker.port}/metrics`,
    redis: inspect,
    keys,
    cpu,
  };

  const phases = async () => {
    // --- registration: every node once, then one heartbeat each (registering → ready) -----
    progress(`registering ${o.jobNodes} nodes over WebSocket (max_concurrent_jobs ${fmt.int(MAX_JOBS)})`);
    const registration = await registerNodes(loadgen, gateway, o.jobNodes, MAX_JOBS);
    await loadgen.ipc.request('round');
    const ready = await waitForReadyReplica(selectorUrl, secrets.SB_API_KEY, registration.nodes);
    progress(
      `registered ${registration.nodes} nodes in ${registration.seconds.toFixed(1)} s; ` +
        `all ready in the selector's replica ${ready.seconds.toFixed(1)} s after their first heartbeat`,
    );

    // --- 2. + 3. jobs: quiet → storm → quiet ----------------------------------------------
    progress(
      `jobs: ${fmt.int(o.jobRate)} POST /v1/jobs per s over ${o.jobConnections} keep-alive connections; ` +
        `${o.warmupS} s warm-up, then ${o.jobDurationS} s windows: quiet, storm, quiet`,
    );
    await client.request('start', {
      url: selectorUrl,
      apiKey: secrets.SB_API_KEY,
      rate: o.jobRate,
      connections: o.jobConnections,
    });
    await pinger.request('start', { redisUrl: redisServer.url });
    await sleep(o.warmupS * 1000);

    // --- the storm's rate: the gateway's max sustained rate in this layout (bursts) --------
    let stormSearch = null;
    let stormRate = o.stormRate;
    if (stormRate <= 0) {
      progress(
        `storm rate: searching the gateway's max sustained rate (bursts of ${o.jobNodes}, jobs flowing)`,
      );
      const start = await measureStep(stormCtx, STORM_SEARCH_START, o.rampSettleS, o.rampStepS);
      stormSearch = await rampSearch(stormCtx, {
        start,
        maxRate: o.maxRate,
        settleS: o.rampSettleS,
        measureS: o.rampStepS,
        p99GoalMs: 5,
        onStep: (rate) => progress(`storm rate search: offering ${fmt.int(rate)}/s`),
      });
      if (stormSearch.maxSustainedOffered === null) {
        warn(
          `no storm rate kept up (from ${STORM_SEARCH_START}/s down): storming at ${STORM_SEARCH_START}/s`,
        );
      }
      stormRate = stormSearch.maxSustainedOffered ?? STORM_SEARCH_START;
      progress(
        `storm rate: ${fmt.int(stormRate)}/s offered (applied ${fmt.int(stormSearch.maxSustained)}/s; ${stormSearch.stoppedBecause})`,
      );
    }
    await jobsDrained('after the storm-rate search');

    const quiet = new JobWindow(windowCtx, 'quiet');
    await quiet.start();
    await sleep(o.jobDurationS * 1000);
    await quiet.end();
    progress(describeWindow(quiet));

    progress(
      `storm: ${fmt.int(stormRate)} heartbeats/s in bursts, ${o.warmupS} s settle + ${o.jobDurationS} s`,
    );
    const storm = new JobWindow(windowCtx, 'storm');
    const stormStep = await measureStep(stormCtx, stormRate, o.warmupS, o.jobDurationS, {
      start: () => storm.start(),
      end: () => storm.end(),
    });
    progress(
      `${describeWindow(storm)}; heartbeats applied ${fmt.int(stormStep.appliedRate)}/s` +
        (stormStep.pass ? '' : ` — storm did not keep up: ${stormStep.notes.join('; ')}`),
    );

    await jobsDrained('after the storm');
    const after = new JobWindow(windowCtx, 'quiet after');
    await after.start();
    await sleep(o.jobDurationS * 1000);
    await after.end();
    progress(describeWindow(after));
    const totals = await client.request<{
      sent: number;
      answered: number;
      inFlight: number;
      notSent: number;
    }>('stop', {}, 60_000);

    const windows = [quiet.result(), storm.result(), after.result()];
    warnIfDisturbed([
      ...windows.map((w) => [w.label, w.cpu] as const),
      ...(stormSearch?.steps ?? []).map((s) => [`storm search ${s.offeredRate}/s`, s.cpu] as const),
    ]);
    return { registration, ready, stormSearch, stormRate, stormStep, windows, totals };
  };

  /**
   * Waits until the job client has no backlog (fewer requests in flight than 100 ms of the
   * offered rate, for 2 s in a row) — a window must not open on the queue of a phase before.
   */
  async function jobsDrained(after: string): Promise<void> {
    const started = performance.now();
    const limit = Math.max(16, o.jobRate * 0.1);
    let calm = 0;
    while (calm < 20) {
      const c = await client.request<{ inFlight: number }>('counters');
      calm = c.inFlight < limit ? calm + 1 : 0;
      if (performance.now() - started > 60_000) {
        warn(`${after}: the job client still had ${c.inFlight} requests in flight after 60 s`);
        return;
      }
      await sleep(100);
    }
    await sleep(Math.max(0, o.warmupS * 1000 - (performance.now() - started)));
    const s = (performance.now() - started) / 1000;
    if (s > o.warmupS + 2.5) progress(`${after}: the job backlog took ${s.toFixed(1)} s to drain`);
  }

  function describeWindow(w: JobWindow): string {
    const r = w.result();
    const statuses = Object.entries(r.client.statuses)
      .map(([k, v]) => `${k}×${v}`)
      .join(' ');
    return (
      `${r.label}: POST p50 ${fmt.ms(r.client.latencyMs?.p50)}, p99 ${fmt.ms(r.client.latencyMs?.p99)} ` +
      `(${statuses || 'no answer'}), choice p99 ${fmt.int(r.client.selectionUs?.p99)} µs, ` +
      `selector CPU ${fmt.pct(r.cpu.processes['selector'])}`
    );
  }

  const measured = await Promise.race([phases(), guard.failed]);

  progress('stopping');
  guard.disarm();
  await stopClient();
  await stopPinger();
  await loadgen.close();
  const [selectorExit, gatewayExit, workerExit] = await Promise.all([
    selector.stop(),
    gateway.stop(),
    worker.stop(),
  ]);
  const profile = profileDir ? summarizeServiceProfile(profileDir, 'selector') : null;

  const result: SelectorResult = {
    scenario: 'selector',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: o,
    environment: finalEnvironment(environment, redis.version, pinned ? CORE : null),
    warnings: takeWarnings(),
    setup: {
      shards: SHARDS,
      maxConcurrentJobs: MAX_JOBS,
      nodeTtlMs: NODE_TTL_MS,
      ackTimeoutMs: ACK_TIMEOUT_MS,
      jobKinds: JOB_KINDS.map((k) => k.name),
      gatewayEnv: gateway.env,
      workerEnv: worker.env,
      selectorEnv: selector.env,
    },
    choice: { ...choice, cpu: choiceUsage },
    registration: measured.registration,
    readyAfterS: measured.ready.seconds,
    stormSearch: measured.stormSearch,
    stormRate: measured.stormRate,
    stormStep: measured.stormStep,
    windows: measured.windows,
    clientTotals: measured.totals,
    exits: { selector: selectorExit, gateway: gatewayExit, worker: workerExit },
    profile,
    goals: [],
  };
  result.goals = evaluateGoals(result);
  printSelectorSummary(result);
  const resultFile = writeResult('selector', result);
  console.log(`\nfull results: ${resultFile}`);
  return { resultFile, goals: result.goals };
}
