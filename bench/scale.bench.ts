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
import { readFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { startRedisCluster } from '../scripts/lib/redis-cluster-process.ts';
import { KeyBuilder } from '../shared/keys.ts';
import { newSecrets, nodeChild, startGateway, startSelector, startWorker } from './heartbeat/services.ts';
import { beginRun, startBenchRedis, SHARDS } from './heartbeat/setup.ts';
import { CpuMeter } from './lib/cpu.ts';
import { finalEnvironment } from './lib/environment.ts';
import { IpcClient } from './lib/ipc.ts';
import { type Supervisor, watchForExit } from './lib/processes.ts';
import { histogramOf, scrape, sumOf, type Scrape } from './lib/prometheus.ts';
import { fmt, printTable, progress, takeWarnings, writeResult } from './lib/report.ts';
import type { Goal, ScenarioContext, ScenarioOutcome } from './lib/scenario.ts';
import { histogramDelta, histogramQuantile } from './lib/stats.ts';
import { memoryBreakdown, type MemoryBreakdown } from './scale/memory.ts';
import { waitForPublished, waitForReady, type ReadyResult } from './scale/snapshot-wait.ts';

const CORE = { redis: 0, worker: 0, fleetA: 0, orchestrator: 0, gateway: 1, selector: 1, fleetB: 1 } as const;
const HEARTBEAT_INTERVAL_S = 15;
const REGISTER_CONCURRENCY = 128;

type RedisKind = 'standalone' | 'cluster';
type Inspect = Redis | Cluster;

export interface ScaleRun {
  redis: RedisKind;
  nodes: number;
  registration: {
    seconds: number;
    perSec: number;
    statuses: Record<string, number>;
    publishedAfterS: number;
  };
  memory: MemoryBreakdown;
  selector: { readyS: number; rssBytes: number | null; replicaNodes: number };
  heartbeats: {
    offeredPerSec: number;
    achievedPerSec: number;
    statuses: Record<string, number>;
    dropped: number;
    latencyMs: { p50: number; p99: number } | null;
    workerCpuPct: number | null;
    redisCpuPct: number | null;
    gatewayCpuPct: number | null;
    deltasPerSec: number;
    publishedNodesPerSec: number;
    ticks: number;
    tickMs: { mean: number | null; max: number | null };
    recountedPerTick: number | null;
    choice: { jobs: number; p50Ms: number | null; p99Ms: number | null; candidates: number | null };
  };
  storm: {
    nodes: number;
    registerS: number;
    allReadyS: number | null;
    lost: number;
    statuses: Record<string, number>;
  };
}

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
    redisVersion = result.redisVersion;
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
  let inspect: Inspect;
  let masters: Redis[];
  let redisUrl: string;
  let extraEnv: Record<string, string> = {};
  let redisPids: number[];
  let redisVersion = 'unknown';
  if (kind === 'standalone') {
    const r = await startBenchRedis(sup, core(CORE.redis));
    inspect = r.inspect;
    masters = [r.inspect];
    redisUrl = r.server.url;
    redisPids = [r.server.pid];
    redisVersion = r.version;
  } else {
    progress('starting a 3-master Redis Cluster');
    const cluster = await startRedisCluster({ masters: 3 });
    sup.onCleanup('redis cluster', () => cluster.stop());
    inspect = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    sup.onCleanup('cluster client', () => (inspect as Cluster).quit());
    masters = cluster.nodes.map((n) => new Redis(n.port, n.host, { maxRetriesPerRequest: 1 }));
    for (const m of masters) sup.onCleanup('cluster node client', () => m.quit());
    redisUrl = `redis://${cluster.nodes[0]!.host}:${cluster.nodes[0]!.port}`;
    extraEnv = { REDIS_CLUSTER_NODES: cluster.seeds };
    redisPids = cluster.servers.map((s) => s.pid);
    if (core(CORE.redis) !== null) {
      const { pinProcess } = await import('./lib/processes.ts');
      for (const pid of redisPids) pinProcess(pid, core(CORE.redis)!, 'redis-server');
    }
  }
  for (const [name, value] of redisSettings()) for (const m of masters) await m.config('SET', name, value);
  const usedBefore = await usedMemory(masters);
  const secrets = newSecrets();
  const common = { redisUrl, prefix, shards: SHARDS, profileDir: null };
  // the fleet's real interval, and room for a registration storm over HTTP
  const serviceEnv = { ...extraEnv, SB_MAX_INFLIGHT: '100000' };
  const worker = await startWorker(sup, { ...common, cpu: core(CORE.worker), extraEnv: serviceEnv });
  const gateway = await startGateway(sup, {
    ...common,
    wsRateLimit: 50,
    cpu: core(CORE.gateway),
    nodeArgs: [],
    secrets,
    extraEnv: serviceEnv,
  });
  const workerMetrics = `http://127.0.0.1:${worker.port}/metrics`;
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
    const regStart = performance.now();
    const regs = await Promise.all(
      fleets.map((f, i) =>
        f.ipc.request<{ statuses: Record<string, number>; ms: number }>(
          'register',
          { url, token: gateway.joinToken, ...parts[i], concurrency: REGISTER_CONCURRENCY / 2 },
          600_000,
        ),
      ),
    );
    const regS = (performance.now() - regStart) / 1000;
    const statuses = mergeCounts(regs.map((r) => r.statuses));
    progress(`registered in ${regS.toFixed(1)} s (${fmt.int(n / regS)}/s): ${JSON.stringify(statuses)}`);
    const published = await waitForPublished(workerMetrics, inspect, keys, n, 300_000);
    const publishedAfterS = (performance.now() - regStart) / 1000;
    progress(`worker indexed and published every node ${publishedAfterS.toFixed(1)} s after the start`);

    // --- memory -------------------------------------------------------------------------------
    await new Promise((r) => setTimeout(r, 1000));
    const memory = await memoryBreakdown(
      masters,
      kind === 'standalone' ? (inspect as Redis) : null,
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

    // --- heartbeats at the fleet's interval ------------------------------------------------------
    const offered = o.scaleHeartbeatRate > 0 ? o.scaleHeartbeatRate : n / HEARTBEAT_INTERVAL_S;
    progress(`heartbeats: ${fmt.int(offered)}/s for ${o.scaleDurationS} s, dry-run jobs for choice p99`);
    const cpu = new CpuMeter();
    cpu.track('worker', worker.proc.pid);
    cpu.track('gateway', gateway.proc.pid);
    cpu.track('selector', selector.proc.pid);
    redisPids.forEach((pid, i) => cpu.track(`redis${i}`, pid));
    await Promise.all(fleets.map((f) => f.ipc.request('start', { rate: offered / 2 })));
    await new Promise((r) => setTimeout(r, 2000)); // warm-up
    const before = {
      worker: await scrape(workerMetrics),
      selector: await scrape(`${selectorUrl}/metrics`),
      versions: await totalVersion(inspect, keys),
    };
    const t0 = performance.now();
    const cpuStart = cpu.snapshot();
    const choice = await dryRunJobs(selectorUrl, secrets.SB_API_KEY, o.scaleDurationS * 1000);
    const usage = CpuMeter.usage(cpuStart, cpu.snapshot());
    const windowS = (performance.now() - t0) / 1000;
    const after = {
      worker: await scrape(workerMetrics),
      selector: await scrape(`${selectorUrl}/metrics`),
      versions: await totalVersion(inspect, keys),
    };
    const stops = await Promise.all(
      fleets.map((f) =>
        f.ipc.request<{
          sent: number;
          dropped: number;
          statuses: Record<string, number>;
          latencyMs: { p50: number; p99: number } | null;
        }>('stop', {}, 60_000),
      ),
    );
    const hbStatuses = mergeCounts(stops.map((s) => s.statuses));
    const sent = stops.reduce((a, s) => a + s.sent, 0);
    const d = (name: string) => sumOf(after.worker, name) - sumOf(before.worker, name);
    const ticks = d('sb_reaper_ticks_total');
    const tickHist = histogramDelta(
      histogramOf(before.worker, 'sb_reaper_tick_duration_seconds'),
      histogramOf(after.worker, 'sb_reaper_tick_duration_seconds'),
    );
    const selHist = histogramDelta(
      histogramOf(before.selector, 'sb_selection_duration_seconds'),
      histogramOf(after.selector, 'sb_selection_duration_seconds'),
    );
    const redisCpu = redisPids.reduce((a, _, i) => a + (usage.processes[`redis${i}`] ?? 0), 0);
    const heartbeats: ScaleRun['heartbeats'] = {
      offeredPerSec: offered,
      achievedPerSec: (hbStatuses['200'] ?? 0) / (windowS + 2), // sent over warm-up + window
      statuses: hbStatuses,
      dropped: stops.reduce((a, s) => a + s.dropped, 0),
      latencyMs: stops[0]?.latencyMs
        ? { p50: stops[0].latencyMs.p50, p99: Math.max(...stops.map((s) => s.latencyMs?.p99 ?? 0)) }
        : null,
      workerCpuPct: usage.processes['worker'] ?? null,
      redisCpuPct: redisCpu,
      gatewayCpuPct: usage.processes['gateway'] ?? null,
      deltasPerSec: (after.versions - before.versions) / windowS,
      publishedNodesPerSec: d('sb_snapshot_published_nodes_total') / windowS,
      ticks,
      tickMs: {
        mean: ticks > 0 ? (tickHist.sum / tickHist.count) * 1000 : null,
        max: ticks > 0 ? (histogramQuantile(tickHist, 1)?.value ?? NaN) * 1000 : null,
      },
      recountedPerTick: ticks > 0 ? d('sb_slots_recounted_total') / ticks : null,
      choice: {
        jobs: choice.ok,
        p50Ms: selHist.count > 0 ? (histogramQuantile(selHist, 0.5)?.value ?? NaN) * 1000 : null,
        p99Ms: selHist.count > 0 ? (histogramQuantile(selHist, 0.99)?.value ?? NaN) * 1000 : null,
        candidates: choice.candidates,
      },
    };
    void sent;
    progress(
      `heartbeats ${fmt.int(heartbeats.achievedPerSec)}/s of ${fmt.int(offered)}/s offered, worker ${fmt.pct(heartbeats.workerCpuPct)}, ` +
        `redis ${fmt.pct(heartbeats.redisCpuPct)}, ${heartbeats.publishedNodesPerSec.toFixed(0)} published nodes/s, ` +
        `tick ${heartbeats.tickMs.mean?.toFixed(1)} ms, choice p99 ${heartbeats.choice.p99Ms?.toFixed(2)} ms`,
    );

    // --- reconnect storm: 10 % of the fleet -------------------------------------------------------
    const stormN = Math.max(1, Math.floor(n / 10));
    progress(`reconnect storm: ${fmt.int(stormN)} nodes re-register and heartbeat at once`);
    const stormStartEpoch = Date.now();
    const stormStart = performance.now();
    const stormParts = [
      { from: 0, count: Math.ceil(stormN / 2) },
      { from: half, count: Math.floor(stormN / 2) },
    ];
    const stormReplies = await Promise.all(
      fleets.map((f, i) =>
        f.ipc.request<{ statuses: Record<string, number> }>(
          'storm',
          { ...stormParts[i], concurrency: REGISTER_CONCURRENCY / 2 },
          600_000,
        ),
      ),
    );
    const registerS = (performance.now() - stormStart) / 1000;
    const ids = stormParts.flatMap((p) => Array.from({ length: p.count }, (_, k) => p.from + k));
    const ready: ReadyResult = await waitForReady(inspect, keys, ids, stormStartEpoch, 60_000);
    const storm = {
      nodes: stormN,
      registerS,
      allReadyS: ready.lost === 0 ? (ready.doneAt - stormStart) / 1000 : null,
      lost: ready.lost,
      statuses: mergeCounts(stormReplies.map((r) => r.statuses)),
    };
    progress(
      `storm: all re-registered in ${registerS.toFixed(1)} s, all ready ${storm.allReadyS?.toFixed(1) ?? '—'} s, lost ${storm.lost}`,
    );
    return {
      redis: kind,
      nodes: n,
      registration: {
        seconds: regS,
        perSec: n / regS,
        statuses,
        publishedAfterS: published ? publishedAfterS : NaN,
      },
      memory,
      selector: { readyS, rssBytes, replicaNodes },
      heartbeats,
      storm,
    };
  };
  const result = await Promise.race([phases(), guard.failed]);
  guard.disarm();
  return { run: result, redisVersion };
}

function fleetProcess(sup: Supervisor, label: string, cpu: number | null) {
  const proc = sup.spawn(nodeChild(label, 'bench/scale/fleet.child.ts', cpu));
  const ipc = new IpcClient(proc.child, label);
  sup.onCleanup(label, () => proc.stop('SIGTERM', 3000));
  return { proc, ipc };
}

async function usedMemory(masters: Redis[]): Promise<number> {
  let sum = 0;
  for (const m of masters) sum += Number(/used_memory:(\d+)/.exec(await m.info('memory'))?.[1] ?? 0);
  return sum;
}

async function totalVersion(redis: Inspect, keys: KeyBuilder): Promise<number> {
  const values = await Promise.all(
    Array.from({ length: keys.shards }, (_, k) => redis.get(keys.shard(k).version)),
  );
  return values.reduce((sum, v) => sum + Number(v ?? 0), 0);
}

/** BENCH_SCALE_REDIS_CONFIG="name value,name value": CONFIG SET on every master before the run (what-if runs). */
function redisSettings(): [string, string][] {
  const raw = process.env['BENCH_SCALE_REDIS_CONFIG'] ?? '';
  return raw
    .split(',')
    .map((p) => p.trim().split(/\s+/))
    .filter((p): p is [string, string] => p.length === 2);
}

function mergeCounts(list: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of list) for (const [k, v] of Object.entries(c)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function rss(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null;
  }
}

async function waitFor200(url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`${url} not 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Dry-run zh→en jobs, one at a time, for `ms`: the selector's own selection histogram times them. */
async function dryRunJobs(
  url: string,
  apiKey: string,
  ms: number,
): Promise<{ ok: number; candidates: number | null }> {
  const end = performance.now() + ms;
  let ok = 0;
  let candidates: number | null = null;
  while (performance.now() < end) {
    const res = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', dry_run: true, payload: {} }),
    });
    const body = (await res.json()) as { breakdown?: { candidates?: number } };
    if (res.status === 200) {
      ok++;
      candidates = body.breakdown?.candidates ?? candidates;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ok, candidates };
}

function printScale(runs: ScaleRun[]): void {
  const col = (f: (r: ScaleRun) => string) => runs.map(f);
  printTable(
    ['figure', ...runs.map((r) => `${r.redis} (${fmt.int(r.nodes)})`)],
    [
      ['registration, nodes/s (register + heartbeat, HTTP)', ...col((r) => fmt.int(r.registration.perSec))],
      ['all indexed + published after, s', ...col((r) => r.registration.publishedAfterS.toFixed(1))],
      ['Redis memory per node, B', ...col((r) => fmt.int(r.memory.perNodeBytes))],
      ['selector ready after spawn, s', ...col((r) => r.selector.readyS.toFixed(2))],
      ['selector RSS, MiB', ...col((r) => fmt.int((r.selector.rssBytes ?? 0) / 2 ** 20))],
      [
        'heartbeats/s achieved (offered)',
        ...col((r) => `${fmt.int(r.heartbeats.achievedPerSec)} (${fmt.int(r.heartbeats.offeredPerSec)})`),
      ],
      ['heartbeat HTTP p99, ms', ...col((r) => r.heartbeats.latencyMs?.p99.toFixed(1) ?? '—')],
      ['worker CPU, % of a core', ...col((r) => fmt.pct(r.heartbeats.workerCpuPct))],
      ['redis CPU, % of a core', ...col((r) => fmt.pct(r.heartbeats.redisCpuPct))],
      [
        'snapshot deltas/s · published nodes/s',
        ...col(
          (r) => `${r.heartbeats.deltasPerSec.toFixed(0)} · ${r.heartbeats.publishedNodesPerSec.toFixed(0)}`,
        ),
      ],
      [
        'liveness tick mean / max, ms',
        ...col(
          (r) =>
            `${r.heartbeats.tickMs.mean?.toFixed(1) ?? '—'} / ${r.heartbeats.tickMs.max?.toFixed(0) ?? '—'}`,
        ),
      ],
      ['nodes recounted per tick', ...col((r) => fmt.int(r.heartbeats.recountedPerTick ?? NaN))],
      [
        'choice p99, ms (candidates)',
        ...col(
          (r) =>
            `${r.heartbeats.choice.p99Ms?.toFixed(2) ?? '—'} (${fmt.int(r.heartbeats.choice.candidates ?? NaN)})`,
        ),
      ],
      [
        'storm: nodes, re-registered in s',
        ...col((r) => `${fmt.int(r.storm.nodes)}, ${r.storm.registerS.toFixed(1)}`),
      ],
      [
        'storm: all ready after, s (lost)',
        ...col((r) => `${r.storm.allReadyS?.toFixed(1) ?? '—'} (${r.storm.lost})`),
      ],
    ],
  );
}

function scaleGoals(runs: ScaleRun[]): Goal[] {
  const goals: Goal[] = [];
  for (const r of runs) {
    const tag = `${r.redis}, ${fmt.int(r.nodes)} nodes`;
    goals.push({
      name: `Redis memory per node (${tag})`,
      target: '≤ 1 KB',
      value: `${fmt.int(r.memory.perNodeBytes)} B`,
      pass: r.memory.perNodeBytes <= 1024,
    });
    goals.push({
      name: `selector bootstrap (${tag})`,
      target: r.nodes >= 100_000 ? '≤ 2 s' : '≤ 2 s (goal set at 100,000)',
      value: `${r.selector.readyS.toFixed(2)} s`,
      pass: r.selector.readyS <= 2,
    });
    goals.push({
      name: `reconnect storm of ${fmt.int(r.storm.nodes)} all ready, zero lost (${tag})`,
      target: '≤ 10 s, 0 lost',
      value: `${r.storm.allReadyS?.toFixed(1) ?? '—'} s, ${r.storm.lost} lost`,
      pass: r.storm.lost === 0 && r.storm.allReadyS !== null && r.storm.allReadyS <= 10,
    });
  }
  for (const g of goals) progress(`goal ${g.pass ? 'PASS' : 'FAIL'}: ${g.name}: ${g.value} (${g.target})`);
  return goals;
}

export type { Scrape };
