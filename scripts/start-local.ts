import { randomBytes } from 'node:crypto';
import {
  findFreePort,
  redisServerBinary,
  startRedisServer,
  type RedisServerHandle,
} from './lib/redis-server-process.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { startJobTrickle } from './lib/job-trickle.ts';
import { launchService, stopService, type LaunchedService } from './lib/service-launcher.ts';

/**
 * `npm start`: a working local Switchboard. Redis from PATH on a free port (unless REDIS_URL
 * or REDIS_CLUSTER_NODES is set), a gateway, a worker and a selector. Prints where to look;
 * Ctrl-C stops all.
 * Set VERBOSE=1 to see every service log line.
 */

const verbose = process.env['VERBOSE'] === '1';
const echo = verbose ? (line: string) => console.log(line) : undefined;

async function main(): Promise<void> {
  let redis: RedisServerHandle | null = null;
  const services: LaunchedService[] = [];
  let fleet: ChildProcess | null = null;
  let trickle: { stop(): void } | null = null;
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping…');
    trickle?.stop();
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
    }

    const nodes = Number(process.env['START_NODES'] ?? 200);
    const jobsPerSecond = Number(process.env['START_JOBS_PER_S'] ?? 2);
    const tokens = {
      SB_AUTH: process.env['SB_AUTH'] ?? 'on',
      SB_JOIN_TOKEN: process.env['SB_JOIN_TOKEN'] ?? `join-${randomBytes(9).toString('base64url')}`,
      SB_NODE_TOKEN_SECRET: process.env['SB_NODE_TOKEN_SECRET'] ?? randomBytes(24).toString('base64url'),
      SB_API_KEY: process.env['SB_API_KEY'] ?? `key-${randomBytes(9).toString('base64url')}`,
    };
    const common = { ...(redisUrl ? { REDIS_URL: redisUrl } : {}), ...tokens };
    const gatewayPort = process.env['PORT'] ?? String(await preferredPort(8080));
    const gw = await launchService(
      'gateway',
      'services/gateway/main.ts',
      { ...common, PORT: gatewayPort },
      { echo },
    );
    services.push(gw);
    const workerPort = String(await preferredPort(8082));
    const worker = await launchService(
      'worker',
      'services/worker/main.ts',
      { ...common, PORT: workerPort },
      { echo },
    );
    services.push(worker);
    const selectorPort = String(await preferredPort(8081));
    const selector = await launchService(
      'selector',
      'services/selector/main.ts',
      { ...common, PORT: selectorPort },
      { echo },
    );
    services.push(selector);

    console.log(`
Switchboard is running (Ctrl-C stops everything).

  Redis            ${redisUrl ?? process.env['REDIS_CLUSTER_NODES']}${redis ? '  (started by npm start, data discarded on exit)' : ''}
  Gateway          http://127.0.0.1:${gw.port}
    node socket    ws://127.0.0.1:${gw.port}/ws/node   (Authorization: Bearer <join token>)
    node HTTP      POST http://127.0.0.1:${gw.port}/v1/nodes/register
    metrics        http://127.0.0.1:${gw.port}/metrics
    readiness      http://127.0.0.1:${gw.port}/readyz
  Selector         http://127.0.0.1:${selector.port}   (Authorization: Bearer <API key>)
    submit a job   curl -H "Authorization: Bearer ${tokens.SB_API_KEY}" -H 'content-type: application/json' \\
                     -d '{"src_lang":"zh","tgt_lang":"en","dry_run":true}' http://127.0.0.1:${selector.port}/v1/jobs
    nodes, pools   http://127.0.0.1:${selector.port}/v1/nodes   /v1/pools   /v1/snapshot
  Worker           http://127.0.0.1:${worker.port}/metrics   (pool index, snapshot flush, liveness)
  Join token       ${tokens.SB_JOIN_TOKEN}
  API key          ${tokens.SB_API_KEY}

  Fleet            ${nodes} simulated nodes (agent/fleet-cli.ts), ${jobsPerSecond} jobs/s submitted
                   (START_NODES, START_JOBS_PER_S change them; 0 = none)

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
          `ws://127.0.0.1:${gw.port}/ws/node`,
          '--token',
          tokens.SB_JOIN_TOKEN,
          '--nodes',
          String(nodes),
          '--job-ms',
          '800',
          '--heartbeat-ms',
          '5000',
          '--summary-ms',
          '10000',
        ],
        { stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'ignore'] },
      );
      fleet.stdout!.on('data', (c: Buffer) => process.stdout.write(c));
    }
    if (jobsPerSecond > 0) {
      const t = startJobTrickle([`http://127.0.0.1:${selector.port}`], tokens.SB_API_KEY, jobsPerSecond);
      trickle = t;
      setInterval(() => {
        const x = t.stats;
        console.log(
          `[jobs] submitted ${x.submitted} · placed ${x.placed} · finished ${x.finished} · failed ${x.failed} · no node ${x.noNode} · errors ${x.errors}`,
        );
      }, 10_000).unref();
    }
    const code = await Promise.race(services.map((s) => s.exited.then((c) => ({ s, c }))));
    if (!stopping) {
      console.error(`${code.s.name} exited unexpectedly with code ${code.c}; stopping the rest`);
      await stopAll(1);
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    await stopAll(1);
  }
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
