import { randomBytes } from 'node:crypto';
import {
  findFreePort,
  redisServerBinary,
  startRedisServer,
  type RedisServerHandle,
} from './lib/redis-server-process.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { startJobTrickle } from './lib/job-trickle.ts';
import { waitForReadyFleet } from './lib/fleet-readiness.ts';
import { startLiveSummary } from './lib/live-summary.ts';
import { launchService, stopService, type LaunchedService } from './lib/service-launcher.ts';
import { formatStartFailure } from './lib/service-log-tail.ts';
import { ConfigError, loadConfig } from '../shared/config.ts';
import { probeRedis } from '../shared/redis-client.ts';
import { unreachableMessage } from '../shared/redis-reachability.ts';

/**
 * `npm start`: a working local Switchboard. Redis from PATH on a free port (unless REDIS_URL
 * or REDIS_CLUSTER_NODES is set), 2 gateways, a worker, 2 selectors, a simulated fleet and a
 * trickle of jobs. Prints where to look and keeps a one-screen summary; Ctrl-C stops all.
 * Set VERBOSE=1 to see every service log line.
 */

const verbose = process.env['VERBOSE'] === '1';
const REDIS_PROBE_TIMEOUT_MS = 3000;
const echo = verbose ? (line: string) => console.log(line) : undefined;
/** How long the job trickle waits for the whole fleet to be ready before it starts anyway. */
const FLEET_READY_TIMEOUT_MS = 60_000;

async function main(): Promise<void> {
  let redis: RedisServerHandle | null = null;
  const services: LaunchedService[] = [];
  let fleet: ChildProcess | null = null;
  let trickle: { stop(): void } | null = null;
  let summary: { stop(): void } | null = null;
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    // the summary first: a scrape in flight must not redraw over the line below
    summary?.stop();
    trickle?.stop();
    console.log('\nstopping…');
    if (fleet && fleet.exitCode === null) {
      const exited = new Promise((resolve) => fleet!.once('exit', resolve));
      fleet.kill('SIGTERM');
      await exited;
    }
    for (const s of [...services].reverse()) await stopService(s);
    await redis?.destroy();
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  try {
    let redisUrl = process.env['REDIS_URL'];
    if (!redisUrl && !process.env['REDIS_CLUSTER_NODES']) {
      try {
        redisServerBinary();
      } catch (err) {
        console.error(`\n${(err as Error).message}\n`);
        process.exit(1);
      }
      redis = await startRedisServer();
      redisUrl = redis.url;
    } else {
      // a Redis of the user's: say at once when it cannot be reached, not after every service timed out
      await assertRedisReachable();
    }

    const nodes = Number(process.env['START_NODES'] ?? 200);
    const jobsPerSecond = Number(process.env['START_JOBS_PER_S'] ?? 2);
    const windowSeconds = Number(process.env['START_SUMMARY_WINDOW_S'] ?? 30);
    if (!(windowSeconds > 0)) throw new Error('START_SUMMARY_WINDOW_S: expected a number of seconds > 0');
    const linguaShare = process.env['START_LINGUA_SHARE'] ?? '0.5';
    const tokens = {
      SB_AUTH: process.env['SB_AUTH'] ?? 'on',
      SB_JOIN_TOKEN: process.env['SB_JOIN_TOKEN'] ?? `join-${randomBytes(9).toString('base64url')}`,
      SB_NODE_TOKEN_SECRET: process.env['SB_NODE_TOKEN_SECRET'] ?? randomBytes(24).toString('base64url'),
      SB_API_KEY: process.env['SB_API_KEY'] ?? `key-${randomBytes(9).toString('base64url')}`,
      SB_ADMIN_API_KEYS: process.env['SB_ADMIN_API_KEYS'] ?? `admin-${randomBytes(9).toString('base64url')}`,
    };
    /** The first admin key, shown in the banner. */
    const adminKey = tokens.SB_ADMIN_API_KEYS.split(',')[0]!.replace(/^[^:]*:/, '');
    const common = { ...(redisUrl ? { REDIS_URL: redisUrl } : {}), ...tokens };
    const launch = async (
      name: string,
      entry: string,
      preferred: number,
      env: Record<string, string> = {},
    ) => {
      const service = await launchService(
        name,
        entry,
        { ...common, ...env, PORT: String(await preferredPort(preferred)) },
        { echo },
      );
      services.push(service);
      return service;
    };
    // each gateway replica runs SB_GATEWAY_PROCESSES processes on its port (2 here unless set)
    const gatewayProcesses = { SB_GATEWAY_PROCESSES: String(process.env['SB_GATEWAY_PROCESSES'] ?? 2) };
    const gateways = [
      await launch('gateway-1', 'services/gateway/main.ts', 8080, gatewayProcesses),
      await launch('gateway-2', 'services/gateway/main.ts', 8090, gatewayProcesses),
    ];
    const worker = await launch('worker', 'services/worker/main.ts', 8082);
    const selectors = [
      await launch('selector-1', 'services/selector/main.ts', 8081),
      await launch('selector-2', 'services/selector/main.ts', 8091),
    ];
    const http = (s: LaunchedService) => `http://127.0.0.1:${s.port}`;
    const [gw, selector] = [gateways[0]!, selectors[0]!];

    console.log(`
Switchboard is running (Ctrl-C stops everything).

  Redis            ${redisUrl ?? process.env['REDIS_CLUSTER_NODES']}${redis ? '  (started by npm start, data discarded on exit)' : ''}
  Gateways         ${gateways.map(http).join('  ')}   (${gatewayProcesses.SB_GATEWAY_PROCESSES} processes each: SB_GATEWAY_PROCESSES)
    node socket    ws://127.0.0.1:${gw.port}/ws/node   (Authorization: Bearer <join token>)
    node HTTP      POST ${http(gw)}/v1/nodes/register
  Selectors        ${selectors.map(http).join('  ')}   (Authorization: Bearer <API key>)
    submit a job   curl -H "Authorization: Bearer ${tokens.SB_API_KEY}" -H 'content-type: application/json' \\
                     -d '{"src_lang":"zh","tgt_lang":"en","dry_run":true}' ${http(selector)}/v1/jobs
    nodes, pools   ${http(selector)}/v1/nodes   /v1/pools   /v1/snapshot   (admin key)
    console        ${http(selector)}/console/   (sign in with the admin key below)
  Worker           ${http(worker)}/metrics   (snapshot flush, liveness, timeouts)
  Metrics          /metrics on every service above; readiness /readyz
  Join token       ${tokens.SB_JOIN_TOKEN}
  API key          ${tokens.SB_API_KEY}
  Admin key        ${adminKey}
  Fleet            ${nodes} simulated nodes (agent/fleet-cli.ts) on both gateways, ${jobsPerSecond} jobs/s submitted,
                   a share of ${linguaShare} speaking the lingua node client's dialect
                   (START_NODES, START_JOBS_PER_S, START_LINGUA_SHARE change them; 0 = none)

Service logs: VERBOSE=1 npm start
`);
    if (nodes > 0) {
      fleet = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'agent/fleet-cli.ts',
          '--gateway',
          gateways.map((g) => `ws://127.0.0.1:${g.port}/ws/node`).join(','),
          '--token',
          tokens.SB_JOIN_TOKEN,
          '--nodes',
          String(nodes),
          '--job-ms',
          '800',
          '--heartbeat-ms',
          '5000',
          '--summary-ms',
          '0',
          '--lingua-share',
          linguaShare,
        ],
        { stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'ignore'] },
      );
      if (verbose) fleet.stdout!.on('data', (c: Buffer) => process.stdout.write(c));
      else fleet.stdout!.resume();
    }
    // jobs only once every selector sees the whole fleet ready (or after a minute, whatever it sees)
    let trickleState: string | null =
      jobsPerSecond > 0 ? `jobs: waiting for the fleet (0/${nodes} ready)` : null;
    if (jobsPerSecond > 0) {
      const startTrickle = () => {
        if (!stopping) trickle = startJobTrickle(selectors.map(http), tokens.SB_API_KEY, jobsPerSecond);
      };
      if (nodes === 0) startTrickle();
      else
        void waitForReadyFleet(selectors.map(http), nodes, {
          timeoutMs: FLEET_READY_TIMEOUT_MS,
          cancelled: () => stopping,
          progress: (ready) => (trickleState = `jobs: waiting for the fleet (${ready}/${nodes} ready)`),
        }).then(({ ready, timedOut }) => {
          const at = new Date().toISOString().slice(11, 19);
          trickleState = timedOut
            ? `jobs: ${jobsPerSecond}/s since ${at}, started with ${ready}/${nodes} nodes ready after ${FLEET_READY_TIMEOUT_MS / 1000} s`
            : `jobs: ${jobsPerSecond}/s since ${at}, once all ${nodes} nodes were ready`;
          startTrickle();
        });
    }
    const live = process.stdout.isTTY && !verbose;
    let shown = 0;
    summary = startLiveSummary(
      {
        gateways: gateways.map(http),
        selectors: selectors.map(http),
        worker: http(worker),
        note: () => trickleState,
      },
      { intervalMs: live ? 2000 : 10_000, windowMs: windowSeconds * 1000 },
      (block) => {
        // redraw in place on a terminal; plain blocks in a log
        if (live && shown > 0) process.stdout.write(`\x1b[${shown}A\x1b[J`);
        process.stdout.write(`${block}\n`);
        shown = block.split('\n').length;
      },
    );
    const gone = await Promise.race(services.map((s) => s.closed.then(() => s)));
    if (!stopping) {
      const how =
        gone.proc.exitCode !== null ? `code ${gone.proc.exitCode}` : `signal ${gone.proc.signalCode}`;
      console.error(
        `${formatStartFailure(gone.name, `exited unexpectedly with ${how}`, gone.lastLines())}\nstopping the rest`,
      );
      await stopAll(1);
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    await stopAll(1);
  }
}

/**
 * Exits 1 with one line (`npm start: cannot reach Redis at …`) unless the Redis that REDIS_URL /
 * REDIS_CLUSTER_NODES name answers PING within a few seconds; exits 78 on a configuration the
 * services would refuse anyway (a bad REDIS_URL).
 */
async function assertRedisReachable(): Promise<void> {
  let target;
  try {
    // only the Redis part matters here; the secrets come later (generated when unset)
    target = loadConfig({ ...process.env, SB_AUTH: 'off' }).redis;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`npm start: ${err.message}`);
    process.exit(78);
  }
  const failure = await probeRedis(target, REDIS_PROBE_TIMEOUT_MS);
  if (!failure) return;
  console.error(
    `npm start: ${unreachableMessage(target, failure)} (or unset both: npm start then runs its own redis-server)`,
  );
  process.exit(1);
}

/** `port` when free, else any free port. */
async function preferredPort(port: number): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => void findFreePort().then(resolve));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(port)));
  });
}

void main();
