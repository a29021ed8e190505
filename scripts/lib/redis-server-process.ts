/**
 * Spawns real standalone `redis-server` processes for tests and the local dev launcher (the
 * Cluster built from them is redis-cluster-process.ts).
 *
 * - No config file: everything is passed on the command line, persistence is off.
 * - Each server gets its own temp dir; its stdout/stderr go to `<dir>/redis.log`, never to the terminal.
 * - Readiness is polled (PING + `INFO server` process_id must match the child we spawned) with a deadline.
 * - Children are SIGKILLed when the parent process exits (cleanup-on-exit.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installExitHooks, liveChildren, ownedDirs } from './cleanup-on-exit.ts';
import { findFreePort, HOST } from './local-ports.ts';
import { probe } from './redis-readiness-probe.ts';
import { redisServerBinary } from './redis-server-binary.ts';

// Part of this module's API since before they had modules of their own.
export { findFreePort } from './local-ports.ts';
export { redisServerBinary } from './redis-server-binary.ts';

const START_DEADLINE_MS = 10_000;
const STOP_DEADLINE_MS = 5_000;
const POLL_INTERVAL_MS = 25;
const MAX_PORT_ATTEMPTS = 5;

export interface RedisServerOptions {
  /** Fixed port. Default: a free port (re-picked automatically if it gets taken before redis binds). */
  port?: number;
  /** Working dir (`--dir`, log file). Default: a fresh temp dir, removed by `destroy()`. */
  dir?: string;
  /** Extra redis-server arguments, appended after the defaults (later wins). */
  args?: string[];
  /** `--loglevel` (debug | verbose | notice | warning). Default: notice. */
  logLevel?: string;
}

export interface RedisServerHandle {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** pid of the current redis-server process (changes after `restart()`). */
  readonly pid: number;
  readonly dir: string;
  readonly logFile: string;
  /** SIGTERM, wait for exit; SIGKILL if it has not exited within 5 s. No-op if not running. */
  stop(): Promise<void>;
  /** SIGKILL immediately (sent synchronously); the promise resolves once the process has exited. */
  kill(): Promise<void>;
  /** Stops the server if running, then starts it again on the SAME port and waits for PING. */
  restart(): Promise<void>;
  /** `stop()`, then remove the temp dir if this module created it. */
  destroy(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function logTail(logFile: string, lines = 20): string {
  try {
    return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

class PortInUseError extends Error {}

interface Running {
  child: ChildProcess;
  /** Resolves once the process has exited (or failed to spawn). */
  exited: Promise<void>;
  done: boolean;
  spawnError: Error | null;
}

function isRunning(r: Running | null): r is Running {
  return r !== null && !r.done;
}

async function launch(bin: string, port: number, args: string[], logFile: string): Promise<Running> {
  installExitHooks();
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let markExited = (): void => {};
  const running: Running = {
    child,
    exited: new Promise<void>((resolve) => (markExited = resolve)),
    done: false,
    spawnError: null,
  };
  const onGone = (): void => {
    running.done = true;
    liveChildren.delete(child);
    markExited();
  };
  child.once('close', onGone);
  child.once('error', (err) => {
    running.spawnError = err;
    onGone();
  });
  liveChildren.add(child);

  const deadline = Date.now() + START_DEADLINE_MS;
  for (;;) {
    if (running.spawnError) throw new Error(`failed to spawn ${bin}: ${running.spawnError.message}`);
    if (!isRunning(running)) {
      const tail = logTail(logFile);
      const msg = `redis-server on port ${port} exited during startup (code ${child.exitCode}, signal ${child.signalCode}). Log ${logFile}:\n${tail}`;
      if (/address already in use/i.test(tail)) throw new PortInUseError(msg);
      throw new Error(msg);
    }
    const res = await probe(port, 1_000);
    if (res.pong && res.processId === child.pid) return running;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await running.exited;
      const other = res.pong
        ? ` (port ${port} answered, but from pid ${res.processId}, not ${child.pid})`
        : '';
      throw new Error(
        `redis-server on port ${port} did not answer PING within ${START_DEADLINE_MS} ms${other}. Log ${logFile}:\n${logTail(logFile)}`,
      );
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

async function terminate(r: Running | null, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  if (!r) return;
  if (isRunning(r)) r.child.kill(signal);
  if (signal === 'SIGTERM') {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      r.exited.then(() => false),
      new Promise<boolean>((res) => (timer = setTimeout(() => res(true), STOP_DEADLINE_MS))),
    ]);
    clearTimeout(timer);
    if (timedOut && isRunning(r)) r.child.kill('SIGKILL');
  }
  await r.exited;
}

/** Options of startServer beyond the public ones (for redis-cluster-process.ts). */
export interface StartServerOptions extends RedisServerOptions {
  /** Extra args that depend on the chosen port (cluster config file, bus port). */
  argsForPort?: (port: number) => Promise<string[]> | string[];
}

export async function startServer(opts: StartServerOptions): Promise<RedisServerHandle> {
  const bin = redisServerBinary();
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'switchboard-redis-'));
  mkdirSync(dir, { recursive: true });
  if (ownsDir) ownedDirs.add(dir);
  const removeDir = async (): Promise<void> => {
    if (!ownsDir) return;
    ownedDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  const logFile = join(dir, 'redis.log');

  const buildArgs = async (port: number): Promise<string[]> => [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--loglevel',
    opts.logLevel ?? 'notice',
    ...(opts.argsForPort ? await opts.argsForPort(port) : []),
    ...(opts.args ?? []),
  ];

  let port = opts.port ?? (await findFreePort());
  let args: string[];
  let current: Running | null;
  for (let attempt = 1; ; attempt++) {
    args = await buildArgs(port);
    try {
      current = await launch(bin, port, args, logFile);
      break;
    } catch (err) {
      // Someone grabbed the free port between findFreePort() and bind: pick another one.
      if (err instanceof PortInUseError && opts.port === undefined && attempt < MAX_PORT_ATTEMPTS) {
        port = await findFreePort();
        continue;
      }
      await removeDir();
      throw err;
    }
  }

  const finalPort = port;
  const finalArgs = args;
  let restarting: Promise<void> | null = null;

  const handle: RedisServerHandle = {
    port: finalPort,
    url: `redis://${HOST}:${finalPort}`,
    get pid(): number {
      return current?.child.pid ?? -1;
    },
    dir,
    logFile,
    stop: () => terminate(current, 'SIGTERM'),
    kill: () => terminate(current, 'SIGKILL'),
    restart: () => {
      restarting ??= (async () => {
        await terminate(current, 'SIGTERM');
        current = await launch(bin, finalPort, finalArgs, logFile);
      })().finally(() => {
        restarting = null;
      });
      return restarting;
    },
    destroy: async () => {
      await terminate(current, 'SIGTERM');
      await removeDir();
    },
  };
  return handle;
}

/**
 * Spawns `redis-server --port <port> --bind 127.0.0.1 --save "" --appendonly no --dir <tmp>` and
 * resolves once it answers PING (deadline 10 s).
 */
export function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServerHandle> {
  return startServer(opts);
}
