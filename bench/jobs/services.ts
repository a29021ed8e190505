/**
 * The processes of the jobs scenario: gateway, worker and selector as real `services/*`
 * processes sharing one prefix, Redis and set of secrets (configured only through their
 * environment), and the scenario's two benchmark children (fleet, job client). Each is
 * registered with the supervisor, so it is stopped on every exit path.
 */
import { randomBytes } from 'node:crypto';
import { IpcClient } from '../lib/ipc.ts';
import type { ChildSpec, ManagedProcess, Supervisor } from '../lib/processes.ts';
import { REPO_ROOT } from '../lib/report.ts';

/** The parent's environment without anything that would reconfigure a Switchboard service. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^(SB_|REDIS_|PORT$|HOST$|LOG_LEVEL$|NODE_OPTIONS$)/.test(key)) delete env[key];
  }
  return env;
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

/** What every service of the run must share (SB_AUTH=on needs all three secrets everywhere). */
export interface Deployment {
  redisUrl: string;
  prefix: string;
  shards: number;
  secrets: {
    SB_JOIN_TOKEN: string;
    SB_NODE_TOKEN_SECRET: string;
    SB_API_KEY: string;
    SB_ADMIN_API_KEYS: string;
  };
}

/** The bench's one API key is also an admin key: it reads /v1/nodes as well as placing jobs. */
export function newSecrets(): Deployment['secrets'] {
  const apiKey = randomBytes(16).toString('hex');
  return {
    SB_JOIN_TOKEN: randomBytes(16).toString('hex'),
    SB_NODE_TOKEN_SECRET: randomBytes(24).toString('hex'),
    SB_API_KEY: apiKey,
    SB_ADMIN_API_KEYS: apiKey,
  };
}

export type ServiceName = 'gateway' | 'worker' | 'selector';

export interface Service {
  name: ServiceName;
  proc: ManagedProcess;
  /** Where it serves its API (gateway: /ws/node, selector: /v1) and `/metrics`. */
  port: number;
  /** The environment it was given, secrets left out (for the result file). */
  env: Record<string, string>;
  /** SIGTERM (graceful), SIGKILL after 15 s; resolves with the exit. */
  stop: () => Promise<{ code: number | null; signal: string | null }>;
}

/** `node --import tsx services/<name>/main.ts` with auth on and every other setting at its default unless given. */
export async function startService(
  sup: Supervisor,
  name: ServiceName,
  d: Deployment,
  cpu: number | null,
  extraEnv: Record<string, string> = {},
): Promise<Service> {
  const env = {
    REDIS_URL: d.redisUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    SB_PREFIX: d.prefix,
    SB_SHARDS: String(d.shards),
    SB_AUTH: 'on',
    LOG_LEVEL: 'info',
    ...extraEnv,
  };
  const proc = sup.spawn({
    label: name,
    command: process.execPath,
    args: ['--import', 'tsx', `services/${name}/main.ts`],
    cpu,
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), ...env, ...d.secrets },
  });
  let exit: Promise<{ code: number | null; signal: string | null }> | null = null;
  const stop = () => (exit ??= proc.stop('SIGTERM', 15_000));
  sup.onCleanup(name, stop);
  const port = await proc.waitForLine(listeningPort, 30_000);
  return { name, proc, port, env, stop };
}

export interface Child {
  proc: ManagedProcess;
  ipc: IpcClient;
  /** Sends `stop` (graceful, bounded), then ends the process. */
  close: () => Promise<void>;
}

/** A benchmark child process (`bench/jobs/*.child.ts`, through tsx, with an IPC channel). */
export function startChild(sup: Supervisor, label: string, script: string, cpu: number | null): Child {
  const spec: ChildSpec = {
    label,
    command: process.execPath,
    args: ['--import', 'tsx', script],
    cpu,
    cwd: REPO_ROOT,
    env: cleanEnv(),
    ipc: true,
  };
  const proc = sup.spawn(spec);
  const ipc = new IpcClient(proc.child, label);
  let closed: Promise<void> | null = null;
  const close = () =>
    (closed ??= (async () => {
      if (proc.running) await ipc.request('stop', {}, 20_000).catch(() => undefined);
      await proc.stop('SIGTERM', 3000);
    })());
  sup.onCleanup(label, close);
  return { proc, ipc, close };
}

/** The clock every process of this scenario timestamps with: epoch ms, sub-ms resolution. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

export interface ClockReading {
  /** epochNow() in the child. */
  hr: number;
  /** Date.now() in the child, read right after. */
  wall: number;
}

export interface ClockCheck {
  /** Child's epochNow() − this process's, estimated at the midpoint of the IPC round trip (ms). */
  offsetMs: number;
  /** ± half the round trip (ms): the offset is known to within this. */
  uncertaintyMs: number;
  /** Child's epochNow() − its Date.now() (ms; services stamp job records with Date.now()). */
  hrMinusWallMs: number;
}

/** NTP-like check of a child's clock against ours: the best of `rounds` IPC round trips. */
export async function checkClock(ipc: IpcClient, rounds = 20): Promise<ClockCheck> {
  let best: ClockCheck | null = null;
  for (let i = 0; i < rounds; i++) {
    const t0 = epochNow();
    const r = await ipc.request<ClockReading>('clock');
    const t1 = epochNow();
    const check = {
      offsetMs: r.hr - (t0 + t1) / 2,
      uncertaintyMs: (t1 - t0) / 2,
      hrMinusWallMs: r.hr - r.wall,
    };
    if (!best || check.uncertaintyMs < best.uncertaintyMs) best = check;
  }
  return best!;
}
