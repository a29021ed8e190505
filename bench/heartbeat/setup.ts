/**
 * Setup shared by the scenarios that drive a gateway with the WebSocket load generator
 * (heartbeat, snapshot): the run's environment and pinning decision, the Redis server with an
 * inspection client, node registration, and the "disturbed machine" check.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import type { CpuUsage } from '../lib/cpu.ts';
import { describeEnvironment, type Environment } from '../lib/environment.ts';
import { pinProcess, tasksetAvailable, type Supervisor } from '../lib/processes.ts';
import { warn } from '../lib/report.ts';
import type { GatewayProcess, LoadGenerator } from './services.ts';

export const SHARDS = 16;
export const REGISTER_CONCURRENCY = 64;

/** Busy CPU outside the benchmark's processes above which a phase's figures are suspect. */
const DISTURBED_PCT = 15;

export function warnIfDisturbed(phases: (readonly [string, CpuUsage])[]): void {
  const disturbed = phases.filter(([, c]) => (c.unaccountedPct ?? 0) > DISTURBED_PCT);
  if (disturbed.length === 0) return;
  const list = disturbed.map(([name, c]) => `${name} ${c.unaccountedPct}%`).join(', ');
  warn(
    `other load on the machine (% of a core outside the benchmark's processes): ${list} — figures disturbed`,
  );
}

export interface RunStart {
  startedAt: Date;
  /** startedAt as a file-name-safe stamp. */
  stamp: string;
  environment: Environment;
  /** True when processes are pinned (taskset present, ≥ 2 cores). */
  pinned: boolean;
  /** `c` when pinned, else null (= leave the process unpinned). */
  core: (c: number) => number | null;
}

/** Describes the machine, warns when it is busy, decides on pinning and pins this process. */
export function beginRun(orchestratorCore: number): RunStart {
  const startedAt = new Date();
  const environment = describeEnvironment();
  if ((environment.loadavg[0] ?? 0) > environment.cpus) {
    warn(
      `load average ${environment.loadavg[0]} on ${environment.cpus} cores before the start: the machine is busy`,
    );
  }
  const pinned = tasksetAvailable() && environment.cpus >= 2;
  if (tasksetAvailable() && !pinned) warn('fewer than 2 cores: nothing is pinned');
  if (pinned) pinProcess(process.pid, orchestratorCore, 'orchestrator');
  return {
    startedAt,
    stamp: startedAt.toISOString().replace(/[:.]/g, '-'),
    environment,
    pinned,
    core: (c) => (pinned ? c : null),
  };
}

export interface BenchRedis {
  server: RedisServerHandle;
  /** A client of the orchestrator's own (queue marks, key reads). */
  inspect: Redis;
  version: string;
}

/** A fresh `redis-server` (stopped at cleanup), pinned to `cpu` when given. */
export async function startBenchRedis(sup: Supervisor, cpu: number | null): Promise<BenchRedis> {
  const server = await startRedisServer();
  sup.onCleanup('redis-server', () => server.destroy());
  if (cpu !== null) pinProcess(server.pid, cpu, 'redis-server');
  const inspect = new Redis(server.url, { maxRetriesPerRequest: 1 });
  sup.onCleanup('inspection client', () => inspect.quit());
  const version = /redis_version:(\S+)/.exec(await inspect.info('server'))?.[1] ?? 'unknown';
  return { server, inspect, version };
}

export interface RegistrationSummary {
  nodes: number;
  seconds: number;
  perSec: number;
}

/**
 * Registers `count` nodes over WebSocket (each waits for its ack); throws if any failed.
 * `maxJobs` replaces the fixture's max_concurrent_jobs (a registration-only field).
 */
export async function registerNodes(
  loadgen: LoadGenerator,
  gateway: GatewayProcess,
  count: number,
  maxJobs?: number,
): Promise<RegistrationSummary> {
  const reg = await loadgen.ipc.request<{
    registered: number;
    failed: number;
    failures: string[];
    ms: number;
  }>(
    'register',
    {
      url: `ws://127.0.0.1:${gateway.port}/ws/node`,
      token: gateway.joinToken,
      count,
      concurrency: REGISTER_CONCURRENCY,
      ...(maxJobs === undefined ? {} : { maxJobs }),
    },
    600_000,
  );
  if (reg.failed > 0) {
    throw new Error(`${reg.failed} of ${count} registrations failed, e.g.: ${reg.failures.join(' | ')}`);
  }
  return { nodes: reg.registered, seconds: reg.ms / 1000, perSec: reg.registered / (reg.ms / 1000) };
}
