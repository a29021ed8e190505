/**
 * The processes of the heartbeat and snapshot scenarios: the gateway under test and the worker
 * (real `services/*` processes, configured only through their environment), the load
 * generator, and the EVALSHA baseline. Each is registered with the supervisor so that it is
 * stopped on every exit path.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CpuMeter, type CpuUsage } from '../lib/cpu.ts';
import { summarizeCpuProfile, type ProfileSummary } from '../lib/cpu-profile.ts';
import { GC_TRACE_FLAG, GcTrace } from '../lib/gc-trace.ts';
import { IpcClient } from '../lib/ipc.ts';
import type { ChildSpec, ManagedProcess, Supervisor } from '../lib/processes.ts';
import { REPO_ROOT, warn } from '../lib/report.ts';
import type { BaselineResult } from './evalsha-baseline.child.ts';

/** The parent's environment without anything that would reconfigure a Switchboard service. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^(SB_|REDIS_|PORT$|HOST$|LOG_LEVEL$|NODE_OPTIONS$)/.test(key)) delete env[key];
  }
  return env;
}

/** A benchmark child process (`*.child.ts`, run through tsx, with an IPC channel). */
export function nodeChild(label: string, script: string, cpu: number | null): ChildSpec {
  const args = ['--import', 'tsx', script];
  return { label, command: process.execPath, args, cpu, cwd: REPO_ROOT, env: cleanEnv(), ipc: true };
}

/** The port in a service's `"msg":"listening"` log line (PROTOCOL.md "Running the services"). */
function listeningPort(line: string): number | undefined {
  try {
    const entry = JSON.parse(line) as { msg?: unknown; port?: unknown };
    return entry.msg === 'listening' && typeof entry.port === 'number' ? entry.port : undefined;
  } catch {
    return undefined;
  }
}

export interface ServiceProcess {
  proc: ManagedProcess;
  /** Where it serves `/metrics`. */
  port: number;
  /** The environment it was given, secrets left out (for the result file). */
  env: Record<string, string>;
  /** SIGTERM (graceful: writes a CPU profile), SIGKILL after 15 s; resolves with the exit. */
  stop: () => Promise<{ code: number | null; signal: string | null }>;
}

export interface GatewayProcess extends ServiceProcess {
  joinToken: string;
  /** Its --trace-gc-nvp lines, accumulated (null when started without them). */
  gcTrace: GcTrace | null;
}

/** The secrets of a deployment (every service that serves an API needs all three when SB_AUTH=on). */
export interface Secrets {
  SB_JOIN_TOKEN: string;
  SB_NODE_TOKEN_SECRET: string;
  SB_API_KEY: string;
  /** the same key as SB_API_KEY: the bench also reads admin routes (GET /v1/nodes, /v1/snapshot) */
  SB_ADMIN_API_KEYS: string;
}

export function newSecrets(): Secrets {
  const apiKey = randomBytes(16).toString('hex');
  return {
    SB_JOIN_TOKEN: randomBytes(16).toString('hex'),
    SB_NODE_TOKEN_SECRET: randomBytes(24).toString('hex'),
    SB_API_KEY: apiKey,
    SB_ADMIN_API_KEYS: apiKey,
  };
}

export async function startGateway(
  sup: Supervisor,
  opts: {
    redisUrl: string;
    prefix: string;
    shards: number;
    wsRateLimit: number;
    /** A core, or a taskset list ("0,1"). */
    cpu: number | string | null;
    profileDir: string | null;
    nodeArgs: string[];
    /** Shared with other services of the run (default: fresh ones). */
    secrets?: Secrets;
    /** More settings (recorded in `env`). */
    extraEnv?: Record<string, string>;
    /** Run with --trace-gc-nvp and account its allocation per heartbeat (bench/lib/gc-trace.ts). */
    gcTrace?: boolean;
  },
): Promise<GatewayProcess> {
  const env = {
    REDIS_URL: opts.redisUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    SB_PREFIX: opts.prefix,
    SB_SHARDS: String(opts.shards),
    SB_AUTH: 'on',
    LOG_LEVEL: 'info',
    SB_WS_RATE_LIMIT: String(opts.wsRateLimit),
    // one process unless asked (the service's own default is one per core)
    SB_GATEWAY_PROCESSES: '1',
    ...opts.extraEnv,
  };
  const secrets = opts.secrets ?? newSecrets();
  const profile = opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir] : [];
  const proc = sup.spawn({
    label: 'gateway',
    command: process.execPath,
    args: [
      ...opts.nodeArgs,
      ...profile,
      ...(opts.gcTrace ? [GC_TRACE_FLAG] : []),
      '--import',
      'tsx',
      'services/gateway/main.ts',
    ],
    cpu: opts.cpu,
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...env, ...secrets },
  });
  const gcTrace = opts.gcTrace ? GcTrace.attach(proc) : null;
  let exit: Promise<{ code: number | null; signal: string | null }> | null = null;
  const stop = () => (exit ??= proc.stop('SIGTERM', 15_000));
  sup.onCleanup('gateway', stop);
  const port = await proc.waitForLine(listeningPort, 30_000);
  return { proc, port, joinToken: secrets.SB_JOIN_TOKEN, env, stop, gcTrace };
}

/**
 * One worker (`services/worker`: snapshot flush, liveness reaper) with the
 * deployment's defaults for everything not given here; serves `/metrics` on its PORT.
 */
export async function startWorker(
  sup: Supervisor,
  opts: {
    redisUrl: string;
    prefix: string;
    shards: number;
    cpu: number | null;
    profileDir: string | null;
    extraEnv?: Record<string, string>;
  },
): Promise<ServiceProcess> {
  const env = {
    REDIS_URL: opts.redisUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    SB_PREFIX: opts.prefix,
    SB_SHARDS: String(opts.shards),
    // The worker serves no node or API traffic, only /metrics and health: no secrets needed.
    SB_AUTH: 'off',
    LOG_LEVEL: 'info',
    ...opts.extraEnv,
  };
  const proc = sup.spawn({
    label: 'worker',
    command: process.execPath,
    args: [
      ...(opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir] : []),
      '--import',
      'tsx',
      'services/worker/main.ts',
    ],
    cpu: opts.cpu,
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...env },
  });
  let exit: Promise<{ code: number | null; signal: string | null }> | null = null;
  const stop = () => (exit ??= proc.stop('SIGTERM', 15_000));
  sup.onCleanup('worker', stop);
  const port = await proc.waitForLine(listeningPort, 30_000);
  return { proc, port, env, stop };
}

/**
 * One selector (`services/selector`: snapshot replica, POST /v1/jobs, read/admin API, /metrics)
 * with auth on and the deployment's defaults for everything not given here.
 */
export async function startSelector(
  sup: Supervisor,
  opts: {
    redisUrl: string;
    prefix: string;
    shards: number;
    cpu: number | null;
    profileDir: string | null;
    secrets: Secrets;
    extraEnv?: Record<string, string>;
  },
): Promise<ServiceProcess> {
  const env = {
    REDIS_URL: opts.redisUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    SB_PREFIX: opts.prefix,
    SB_SHARDS: String(opts.shards),
    SB_AUTH: 'on',
    LOG_LEVEL: 'info',
    ...opts.extraEnv,
  };
  const proc = sup.spawn({
    label: 'selector',
    command: process.execPath,
    args: [
      ...(opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir] : []),
      '--import',
      'tsx',
      'services/selector/main.ts',
    ],
    cpu: opts.cpu,
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...env, ...opts.secrets },
  });
  let exit: Promise<{ code: number | null; signal: string | null }> | null = null;
  const stop = () => (exit ??= proc.stop('SIGTERM', 15_000));
  sup.onCleanup('selector', stop);
  const port = await proc.waitForLine(listeningPort, 30_000);
  return { proc, port, env, stop };
}

export interface LoadGenerator {
  proc: ManagedProcess;
  ipc: IpcClient;
  /** Closes every node socket (1000), then ends the process. */
  close: () => Promise<void>;
}

export function startLoadGenerator(sup: Supervisor, cpu: number | null): LoadGenerator {
  const proc = sup.spawn(nodeChild('load generator', 'bench/heartbeat/ws-load.child.ts', cpu));
  const ipc = new IpcClient(proc.child, 'load generator');
  let closed: Promise<void> | null = null;
  const close = () =>
    (closed ??= (async () => {
      if (proc.running) await ipc.request('close', {}, 15_000).catch(() => undefined);
      await proc.stop('SIGTERM', 3000);
    })());
  sup.onCleanup('load generator', close);
  return { proc, ipc, close };
}

export interface BaselineArgs {
  redisUrl: string;
  prefix: string;
  count: number;
  window: number;
  durationS: number;
}

/** Runs the raw EVALSHA baseline in its own process; CPU is sampled over its measured window. */
export async function runBaseline(
  sup: Supervisor,
  cpuMeter: CpuMeter,
  cpu: number | null,
  args: BaselineArgs,
): Promise<BaselineResult & { cpu: CpuUsage }> {
  const proc = sup.spawn(nodeChild('baseline', 'bench/heartbeat/evalsha-baseline.child.ts', cpu));
  const stop = sup.onCleanup('baseline', () => proc.stop('SIGTERM', 3000));
  try {
    const ipc = new IpcClient(proc.child, 'baseline');
    cpuMeter.track('baseline', proc.pid);
    const windowStart = ipc.once('window-start', 60_000);
    const windowEnd = ipc.once('window-end', (args.durationS + 60) * 1000);
    const done = ipc.request<BaselineResult>('run', { ...args, warmupS: 1 }, (args.durationS + 90) * 1000);
    // If the child dies, all three reject at once: only the first awaited one is handled.
    for (const p of [windowStart, windowEnd, done]) p.catch(() => undefined);
    await Promise.race([windowStart, done]);
    const a = cpuMeter.snapshot();
    await Promise.race([windowEnd, done]);
    const b = cpuMeter.snapshot();
    const result = await done;
    if (result.failures > 0)
      warn(`baseline: ${result.failures} EVALSHA calls failed, first: ${result.firstFailure}`);
    return { ...result, cpu: CpuMeter.usage(a, b) };
  } finally {
    cpuMeter.untrack('baseline');
    await stop();
  }
}

/** A service's main thread: the busiest of its profiles (the tsx loader thread writes one too). */
export function summarizeServiceProfile(dir: string, label: string): ProfileSummary | null {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  const busiest = files.map((f) => summarizeCpuProfile(join(dir, f))).sort((a, b) => b.busyMs - a.busyMs)[0];
  if (!busiest) warn(`no .cpuprofile in ${dir}: the ${label} did not exit cleanly`);
  return busiest ?? null;
}
