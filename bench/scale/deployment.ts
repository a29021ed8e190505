/**
 * The scale scenario's deployment (bench/scale.bench.ts): a fresh standalone Redis or 3-master
 * Redis Cluster with the clients the orchestrator inspects it with, the fleet processes, and
 * the small reads the phases share (used_memory, shard versions, RSS, readiness).
 */
import { readFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { startRedisCluster } from '../../scripts/lib/redis-cluster-process.ts';
import type { KeyBuilder } from '../../shared/keys.ts';
import { nodeChild } from '../heartbeat/services.ts';
import { startBenchRedis } from '../heartbeat/setup.ts';
import { IpcClient } from '../lib/ipc.ts';
import { pinProcess, type Supervisor } from '../lib/processes.ts';
import { progress } from '../lib/report.ts';

export type RedisKind = 'standalone' | 'cluster';
export type Inspect = Redis | Cluster;

export interface ScaleRedis {
  /** A client over the whole keyspace (the Cluster client on Cluster). */
  inspect: Inspect;
  /** One client per master (one on standalone). */
  masters: Redis[];
  redisUrl: string;
  /** The services' extra environment (REDIS_CLUSTER_NODES on Cluster). */
  extraEnv: Record<string, string>;
  pids: number[];
  version: string;
}

/** A fresh Redis of `kind`, pinned to `cpu` when given; stopped at cleanup. */
export async function startScaleRedis(
  sup: Supervisor,
  kind: RedisKind,
  cpu: number | null,
): Promise<ScaleRedis> {
  let redis: ScaleRedis;
  if (kind === 'standalone') {
    const r = await startBenchRedis(sup, cpu);
    redis = {
      inspect: r.inspect,
      masters: [r.inspect],
      redisUrl: r.server.url,
      extraEnv: {},
      pids: [r.server.pid],
      version: r.version,
    };
  } else {
    progress('starting a 3-master Redis Cluster');
    const cluster = await startRedisCluster({ masters: 3 });
    sup.onCleanup('redis cluster', () => cluster.stop());
    const inspect = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    sup.onCleanup('cluster client', () => inspect.quit());
    const masters = cluster.nodes.map((n) => new Redis(n.port, n.host, { maxRetriesPerRequest: 1 }));
    for (const m of masters) sup.onCleanup('cluster node client', () => m.quit());
    const pids = cluster.servers.map((s) => s.pid);
    if (cpu !== null) for (const pid of pids) pinProcess(pid, cpu, 'redis-server');
    redis = {
      inspect,
      masters,
      redisUrl: `redis://${cluster.nodes[0]!.host}:${cluster.nodes[0]!.port}`,
      extraEnv: { REDIS_CLUSTER_NODES: cluster.seeds },
      pids,
      version: 'unknown',
    };
  }
  for (const [name, value] of redisSettings())
    for (const m of redis.masters) await m.config('SET', name, value);
  return redis;
}

/** BENCH_SCALE_REDIS_CONFIG="name value,name value": CONFIG SET on every master before the run (what-if runs). */
function redisSettings(): [string, string][] {
  const raw = process.env['BENCH_SCALE_REDIS_CONFIG'] ?? '';
  return raw
    .split(',')
    .map((p) => p.trim().split(/\s+/))
    .filter((p): p is [string, string] => p.length === 2);
}

export interface FleetProcess {
  proc: ReturnType<Supervisor['spawn']>;
  ipc: IpcClient;
}

/** One fleet child process (`scale/fleet.child.ts`), stopped at cleanup. */
export function fleetProcess(sup: Supervisor, label: string, cpu: number | null): FleetProcess {
  const proc = sup.spawn(nodeChild(label, 'bench/scale/fleet.child.ts', cpu));
  const ipc = new IpcClient(proc.child, label);
  sup.onCleanup(label, () => proc.stop('SIGTERM', 3000));
  return { proc, ipc };
}

export async function usedMemory(masters: Redis[]): Promise<number> {
  let sum = 0;
  for (const m of masters) sum += Number(/used_memory:(\d+)/.exec(await m.info('memory'))?.[1] ?? 0);
  return sum;
}

/** The sum of every shard's snapshot version: deltas published so far. */
export async function totalVersion(redis: Inspect, keys: KeyBuilder): Promise<number> {
  const values = await Promise.all(
    Array.from({ length: keys.shards }, (_, k) => redis.get(keys.shard(k).version)),
  );
  return values.reduce((sum, v) => sum + Number(v ?? 0), 0);
}

export function mergeCounts(list: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of list) for (const [k, v] of Object.entries(c)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export function rss(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null;
  }
}

export async function waitFor200(url: string, timeoutMs: number): Promise<void> {
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
