/**
 * Spawns real `redis-server` processes (standalone and Cluster) for tests and the local dev launcher.
 *
 * - No config file: everything is passed on the command line, persistence is off.
 * - Each server gets its own temp dir; its stdout/stderr go to `<dir>/redis.log`, never to the terminal.
 * - Readiness is polled (PING + `INFO server` process_id must match the child we spawned) with a deadline.
 * - Children are SIGKILLed when the parent process exits.
 * - Clusters are formed with ioredis (ADDSLOTSRANGE + MEET), no redis-cli needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants as fsConstants,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';

const HOST = '127.0.0.1';
const START_DEADLINE_MS = 10_000;
const STOP_DEADLINE_MS = 5_000;
const CLUSTER_DEADLINE_MS = 30_000;
const POLL_INTERVAL_MS = 25;
const CLUSTER_SLOTS = 16384;
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

export interface RedisClusterOptions {
  /** Number of masters (no replicas). Default 3. */
  masters?: number;
}

export interface RedisClusterHandle {
  nodes: { host: string; port: number }[];
  /** `"127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"` (the REDIS_CLUSTER_NODES format). */
  seeds: string;
  /** The underlying per-node servers (e.g. to kill one). */
  servers: RedisServerHandle[];
  /** Stops every node and removes their temp dirs. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Ports

const issuedPorts = new Set<number>();

function listenOnPortZero(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: HOST, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** A currently free TCP port on 127.0.0.1 (never the same port twice within this process). */
export async function findFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnPortZero();
    if (!issuedPorts.has(port)) {
      issuedPorts.add(port);
      return port;
    }
  }
  throw new Error('findFreePort: could not find a port that was not already handed out');
}

// ---------------------------------------------------------------------------------------------
// Binary lookup

const INSTALL_HINT = [
  'Install Redis >= 7:',
  '  Debian/Ubuntu: sudo apt-get install -y redis-server',
  '  macOS:         brew install redis',
  'or set REDIS_SERVER_BIN=/path/to/redis-server,',
  'or point at an existing server instead of spawning one: REDIS_URL=redis://host:port',
  '(tests: TEST_REDIS_URL and TEST_REDIS_CLUSTER_NODES=host:port,host:port,...).',
].join('\n');

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Path to `redis-server`: `$REDIS_SERVER_BIN`, else the first one on PATH; throws with install instructions. */
export function redisServerBinary(): string {
  const fromEnv = process.env['REDIS_SERVER_BIN'];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new Error(`REDIS_SERVER_BIN=${fromEnv} is not an executable file.\n${INSTALL_HINT}`);
  }
  const exe = process.platform === 'win32' ? 'redis-server.exe' : 'redis-server';
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, exe);
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error(`redis-server was not found on PATH (and REDIS_SERVER_BIN is not set).\n${INSTALL_HINT}`);
}

// ---------------------------------------------------------------------------------------------
// Child bookkeeping: kill everything we spawned when the parent goes away.

const liveChildren = new Set<ChildProcess>();
/** Temp dirs this module created and has not removed yet. */
const ownedDirs = new Set<string>();
let exitHooksInstalled = false;

function killAllChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of ownedDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  ownedDirs.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllChildren);
  // A signal with no other listener would kill us without an 'exit' event: clean up, then re-raise
  // the signal so the default behaviour (terminate) still happens. If someone else handles the
  // signal (e.g. a graceful-shutdown handler), leave Redis alive: they will exit and 'exit' fires.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(sig) > 1) return;
      killAllChildren();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

// ---------------------------------------------------------------------------------------------
// Readiness probe: raw RESP over a socket, so nothing retries or logs behind our back.

interface ProbeResult {
  pong: boolean;
  processId: number | null;
}

function probe(port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let buf = Buffer.alloc(0);
    const sock = net.connect({ host: HOST, port });
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(result);
    };
    const fail = (): void => finish({ pong: false, processId: null });
    const timer = setTimeout(fail, timeoutMs);
    sock.on('connect', () => sock.write('PING\r\nINFO server\r\n'));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const firstEnd = buf.indexOf('\r\n');
      if (firstEnd < 0) return;
      const first = buf.subarray(0, firstEnd).toString();
      if (first !== '+PONG') return fail(); // e.g. -LOADING
      const headerEnd = buf.indexOf('\r\n', firstEnd + 2);
      if (headerEnd < 0) return;
      const header = buf.subarray(firstEnd + 2, headerEnd).toString();
      if (!header.startsWith('$')) return fail();
      const len = Number(header.slice(1));
      if (buf.length < headerEnd + 2 + len) return;
      const info = buf.subarray(headerEnd + 2, headerEnd + 2 + len).toString();
      const m = /^process_id:(\d+)\r?$/m.exec(info);
      finish({ pong: true, processId: m?.[1] ? Number(m[1]) : null });
    });
    sock.on('error', fail);
    sock.on('close', fail);
  });
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

// ---------------------------------------------------------------------------------------------
// One redis-server process

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

interface InternalOptions extends RedisServerOptions {
  /** Extra args that depend on the chosen port (cluster config file, bus port). */
  argsForPort?: (port: number) => Promise<string[]> | string[];
}

async function startServer(opts: InternalOptions): Promise<RedisServerHandle> {
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

// ---------------------------------------------------------------------------------------------
// Cluster

function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** Empty string if this node sees a healthy, fully meshed cluster; else the reason. */
async function clusterProblem(client: Redis, masters: number): Promise<string> {
  const info = parseInfo(String(await client.call('CLUSTER', 'INFO')));
  if (info.get('cluster_state') !== 'ok') return `cluster_state:${info.get('cluster_state')}`;
  if (info.get('cluster_slots_assigned') !== String(CLUSTER_SLOTS))
    return `cluster_slots_assigned:${info.get('cluster_slots_assigned')}`;
  if (info.get('cluster_slots_ok') !== String(CLUSTER_SLOTS))
    return `cluster_slots_ok:${info.get('cluster_slots_ok')}`;
  if (info.get('cluster_known_nodes') !== String(masters))
    return `cluster_known_nodes:${info.get('cluster_known_nodes')}`;
  const nodes = String(await client.call('CLUSTER', 'NODES'))
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  for (const n of nodes) {
    const [id, , flags = '', , , , , link = ''] = n;
    if (/handshake|noaddr|fail/.test(flags) || link !== 'connected')
      return `node ${id} flags=${flags} link=${link}`;
  }
  return '';
}

/**
 * Starts `masters` (default 3) cluster-enabled redis-servers on free ports (bus ports picked
 * explicitly with `--cluster-port`), assigns the 16384 slots evenly, MEETs them and waits until
 * every node reports `cluster_state:ok` with all slots assigned (deadline 30 s).
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 1) throw new Error(`masters must be a positive integer`);

  const busPorts = new Map<number, number>();
  const settled = await Promise.allSettled(
    Array.from({ length: masters }, () =>
      startServer({
        argsForPort: async (port) => {
          const bus = await findFreePort();
          busPorts.set(port, bus);
          return [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '2000',
            '--cluster-port',
            String(bus),
          ];
        },
      }),
    ),
  );
  const servers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.destroy()));
  };
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stopAll();
    throw failed.reason;
  }

  const clients = servers.map(
    (s) => new Redis({ host: HOST, port: s.port, lazyConnect: true, maxRetriesPerRequest: 1 }),
  );
  try {
    await Promise.all(clients.map((c) => c.connect()));
    await Promise.all(
      clients.map(async (c, i) => {
        const first = Math.floor((i * CLUSTER_SLOTS) / masters);
        const last = Math.floor(((i + 1) * CLUSTER_SLOTS) / masters) - 1;
        // Distinct config epochs up front, so no epoch-collision dance is needed (like redis-cli does).
        await c.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1));
        await c.call('CLUSTER', 'ADDSLOTSRANGE', String(first), String(last));
      }),
    );
    const [seed] = clients;
    if (!seed) throw new Error('no cluster nodes');
    for (const s of servers.slice(1)) {
      await seed.call('CLUSTER', 'MEET', HOST, String(s.port), String(busPorts.get(s.port)));
    }

    const deadline = Date.now() + CLUSTER_DEADLINE_MS;
    for (;;) {
      const problems = await Promise.all(
        clients.map(async (c, i) => {
          const p = await clusterProblem(c, masters).catch((e: unknown) => String(e));
          return p ? `${servers[i]?.port}: ${p}` : '';
        }),
      );
      const bad = problems.filter(Boolean);
      if (bad.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `Redis cluster did not converge within ${CLUSTER_DEADLINE_MS} ms:\n  ${bad.join('\n  ')}\n` +
            `logs: ${servers.map((s) => s.logFile).join(', ')}`,
        );
      }
      await sleep(100);
    }
  } catch (err) {
    await stopAll();
    throw err;
  } finally {
    clients.forEach((c) => c.disconnect());
  }

  const nodes = servers.map((s) => ({ host: HOST, port: s.port }));
  return {
    nodes,
    seeds: nodes.map((n) => `${n.host}:${n.port}`).join(','),
    servers,
    stop: stopAll,
  };
}
