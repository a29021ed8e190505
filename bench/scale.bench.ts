/**
 * Scale scenario (issue 13 deliverable 3): a fleet of 100,000 simulated nodes (10,000 with
 * `--quick`) driven over the gateway's HTTP node API from two fleet processes, on standalone
 * Redis and on a 3-master Redis Cluster. Reports what each node costs where it lives:
 *
 *   - registration rate (register + first heartbeat, every node over HTTP) and the time until
 *     the worker has indexed and published all of them;
 *   - Redis memory per node (used_memory after ÷ nodes, and MEMORY USAGE by kind of key);
 *   - a new selector's bootstrap: spawn → /readyz 200, and its RSS;
 *   - heartbeats at the fleet's interval (15 s: nodes ÷ 15 per second, or `--scale-rate`):
 *     achieved rate, latency, the worker's CPU, snapshot deltas/s and published nodes/s, the
 *     liveness tick (duration, nodes recounted per tick), and choice p99 from dry-run jobs
 *     (every node is a candidate for zh→en);
 *   - a reconnect storm of 10 % of the fleet: re-register + heartbeat at once, until every one
 *     is published `ready` again (zero lost).
 *
 * Processes (2-core machine): core 0 redis, worker, fleet #1, orchestrator; core 1 gateway,
 * selector, fleet #2. Everything shares two cores: the figures are the whole system's on this
 * machine, not one component's ceiling.
 */
import { randomBytes } from 'node:crypto';
import { KeyBuilder } from '../shared/keys.ts';
import { newSecrets, startGateway, startSelector, startWorker } from './heartbeat/services.ts';
import { beginRun, SHARDS } from './heartbeat/setup.ts';
import { CpuMeter } from './lib/cpu.ts';
import { finalEnvironment } from './lib/environment.ts';
import { type Supervisor, watchForExit } from './lib/processes.ts';
import { scrape, sumOf } from './lib/prometheus.ts';
import { fmt, progress, takeWarnings, writeResult } from './lib/report.ts';
import type { ScenarioContext, ScenarioOutcome } from './lib/scenario.ts';
import {
  fleetProcess,
  mergeCounts,
  rss,
  startScaleRedis,
  usedMemory,
  waitFor200,
  type RedisKind,
} from './scale/deployment.ts';
import { memoryBreakdown } from './scale/memory.ts';
import { heartbeatPhase, stormPhase, wsStormPhase } from './scale/phases.ts';
import { printScale, scaleGoals, type ScaleRun } from './scale/report.ts';
import { waitForPublished } from './scale/snapshot-wait.ts';

const CORE = { redis: 0, worker: 0, fleetA: 0, orchestrator: 0, gateway: 1, selector: 1, fleetB: 1 } as const;
const HEARTBEAT_INTERVAL_S = 15;
const REGISTER_CONCURRENCY = 128;

export type { ScaleRun } from './scale/report.ts';

export async function run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const o = ctx.options;
  const { startedAt, environment, pinned, core } = beginRun(CORE.orchestrator);
  const kinds: RedisKind[] =
    o.scaleRedis === 'both' ? ['standalone', 'cluster'] : [o.scaleRedis as RedisKind];
  const runs: ScaleRun[] = [];
  let redisVersion = 'unknown';
  for (const kind of kinds) {
    progress(`=== ${kind} Redis, ${fmt.int(o.scaleNodes)} nodes ===`);
    const result = await runOne(ctx.supervisor, kind, o, core);
    runs.push(result.run);
    if (result.redisVersion !== 'unknown') redisVersion = result.redisVersion;
    await ctx.supervisor.shutdown();
  }
  printScale(runs);
  const goals = scaleGoals(runs);
  const resultFile = writeResult('scale', {
    scenario: 'scale',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: o,
    environment: finalEnvironment(environment, redisVersion, pinned ? CORE : null),
    warnings: takeWarnings(),
    runs,
    goals,
  });
  return { resultFile, goals };
}

async function runOne(
  sup: Supervisor,
  kind: RedisKind,
  o: ScenarioContext['options'],
  core: (c: number) => number | null,
): Promise<{ run: ScaleRun; redisVersion: string }> {
  const prefix = `scale${randomBytes(3).toString('hex')}`;
  const keys = new KeyBuilder(prefix, SHARDS);
  const redis = await startScaleRedis(sup, kind, core(CORE.redis));
  const { inspect, masters } = redis;
  const usedBefore = await usedMemory(masters);
  const secrets = newSecrets();
  const common = { redisUrl: redis.redisUrl, prefix, shards: SHARDS, profileDir: null };
  // the services' own limits: a storm beyond SB_MAX_INFLIGHT is shed, and its clients try again
  const serviceEnv = { ...redis.extraEnv };
  const worker = await startWorker(sup, { ...common, cpu: core(CORE.worker), extraEnv: serviceEnv });
  const gateway = await startGateway(sup, {
    ...common,
    wsRateLimit: 50,
    cpu: core(CORE.gateway),
    nodeArgs: [],
    secrets,
    extraEnv: serviceEnv,
  });
  const fleets = [
    fleetProcess(sup, 'fleet A', core(CORE.fleetA)),
    fleetProcess(sup, 'fleet B', core(CORE.fleetB)),
  ];
  const guard = watchForExit([worker.proc, gateway.proc, ...fleets.map((f) => f.proc)]);
  const url = `http://127.0.0.1:${gateway.port}`;
  const n = o.scaleNodes;
  const half = Math.ceil(n / 2);
  const parts = [
    { from: 0, count: half },
    { from: half, count: n - half },
  ];

  const phases = async (): Promise<ScaleRun> => {
    // --- registration ---------------------------------------------------------------------
    progress(`registering ${fmt.int(n)} nodes over HTTP (register + first heartbeat each)`);
    const cpu = new CpuMeter();
    cpu.track('gateway', gateway.proc.pid);
    cpu.track('worker', worker.proc.pid);
    redis.pids.forEach((pid, i) => cpu.track(`redis${i}`, pid));
    const cpuStart = cpu.snapshot();
    const regStart = performance.now();
    const regs = await Promise.all(
      fleets.map((f, i) =>
        f.ipc.request<{ statuses: Record<string, number>; ms: number }>(
          'register',
          { url, token: gateway.joinToken, ...parts[i], concurrency: REGISTER_CONCURRENCY / 2 },
          1_800_000,
        ),
      ),
    );
    const regS = (performance.now() - regStart) / 1000;
    const regCpu = CpuMeter.usage(cpuStart, cpu.snapshot());
    // % of a core over the phase → µs per node
    const perNode = (pct: number | null | undefined): number | null =>
      pct === null || pct === undefined ? null : ((pct / 100) * regS * 1e6) / n;
    const redisPct = redis.pids.reduce((a, _, i) => a + (regCpu.processes[`redis${i}`] ?? 0), 0);
    const cpuUsPerNode = {
      gateway: perNode(regCpu.processes['gateway']),
      worker: perNode(regCpu.processes['worker']),
      redis: perNode(redisPct),
    };
    const statuses = mergeCounts(regs.map((r) => r.statuses));
    progress(
      `registered in ${regS.toFixed(1)} s (${fmt.int(n / regS)}/s): ${JSON.stringify(statuses)}; CPU per node ` +
        `gateway ${fmt.int(cpuUsPerNode.gateway ?? NaN)} µs, worker ${fmt.int(cpuUsPerNode.worker ?? NaN)} µs, ` +
        `Redis ${fmt.int(cpuUsPerNode.redis ?? NaN)} µs`,
    );
    const published = await waitForPublished(inspect, keys, n, 600_000);
    const publishedAfterS = (performance.now() - regStart) / 1000;
    progress(`worker published every node ${publishedAfterS.toFixed(1)} s after the start`);

    // --- memory -------------------------------------------------------------------------------
    await new Promise((r) => setTimeout(r, 1000));
    const memory = await memoryBreakdown(
      masters,
      kind === 'standalone' ? masters[0]! : null,
      keys,
      n,
      usedBefore,
    );
    progress(
      `Redis memory: ${fmt.int(memory.perNodeBytes)} B per node (${JSON.stringify(memory.perNodeByKind)})`,
    );
    if (memory.queueKeys.length > 0) progress(`largest queue keys: ${JSON.stringify(memory.queueKeys)}`);

    // --- a new selector -------------------------------------------------------------------------
    const spawned = performance.now();
    const selector = await startSelector(sup, {
      ...common,
      cpu: core(CORE.selector),
      secrets,
      extraEnv: serviceEnv,
    });
    const selectorUrl = `http://127.0.0.1:${selector.port}`;
    await waitFor200(`${selectorUrl}/readyz`, 120_000);
    const readyS = (performance.now() - spawned) / 1000;
    const replicaNodes = sumOf(await scrape(`${selectorUrl}/metrics`), 'sb_replica_nodes');
    const rssBytes = selector.proc.pid === undefined ? null : rss(selector.proc.pid);
    progress(
      `selector ready ${readyS.toFixed(2)} s after spawn, RSS ${fmt.int((rssBytes ?? 0) / 2 ** 20)} MiB, ${fmt.int(replicaNodes)} nodes`,
    );

    // --- heartbeats at the fleet's interval, then the reconnect storm of 10 % --------------------
    const offered = o.scaleHeartbeatRate > 0 ? o.scaleHeartbeatRate : n / HEARTBEAT_INTERVAL_S;
    progress(`heartbeats: ${fmt.int(offered)}/s for ${o.scaleDurationS} s, dry-run jobs for choice p99`);
    const heartbeats = await heartbeatPhase({
      fleets,
      worker,
      gateway,
      selector,
      selectorUrl,
      apiKey: secrets.SB_API_KEY,
      inspect,
      keys,
      redisPids: redis.pids,
      offered,
      durationS: o.scaleDurationS,
    });
    const stormN = Math.max(1, Math.floor(n / 10));
    const storm = await stormPhase({
      fleets,
      inspect,
      keys,
      stormN,
      half,
      concurrency: REGISTER_CONCURRENCY,
      accounted: { gatewayPid: gateway.proc.pid, redisPids: redis.pids },
    });
    const wsStorm = await wsStormPhase({
      sup,
      cpu: core(CORE.fleetA),
      gatewayPort: gateway.port,
      fleets,
      inspect,
      keys,
      stormN,
      half,
      accounted: { gatewayPid: gateway.proc.pid, redisPids: redis.pids },
    });
    return {
      redis: kind,
      nodes: n,
      registration: {
        seconds: regS,
        perSec: n / regS,
        statuses,
        publishedAfterS: published ? publishedAfterS : NaN,
        cpuUsPerNode,
      },
      memory,
      selector: { readyS, rssBytes, replicaNodes },
      heartbeats,
      storm,
      wsStorm,
    };
  };
  const result = await Promise.race([phases(), guard.failed]);
  guard.disarm();
  return { run: result, redisVersion: redis.version };
}
