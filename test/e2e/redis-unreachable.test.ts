import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../scripts/lib/local-ports.ts';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { registerBody } from '../support/node-fixtures.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import { API_KEY, JOIN_TOKEN, NODE_TOKEN_SECRET } from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Issue 9, "the first hour": a Redis that cannot be reached is said in one line naming it and
 * what to do, by each service (which keeps waiting, alive but not ready) and by `npm start`.
 */

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const NO_SECRETS = { SB_JOIN_TOKEN: '', SB_NODE_TOKEN_SECRET: '', SB_API_KEY: '' };
const unreachableLine = (url: string) =>
  `cannot reach Redis at ${url} (ECONNREFUSED): start redis-server or set REDIS_URL / REDIS_CLUSTER_NODES to a reachable Redis`;

interface Case {
  service: 'gateway' | 'worker' | 'selector';
  /** Its secrets (SB_AUTH=on); the worker needs none. */
  secrets: Record<string, string>;
  /** A request of its API, which must get 503 SCHEDULER_DEPENDENCY_DOWN while it waits. */
  request: (base: string) => Promise<Response>;
}

const post = (url: string, token: string, body: unknown) =>
  fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const CASES: Case[] = [
  {
    service: 'gateway',
    secrets: { SB_JOIN_TOKEN: JOIN_TOKEN, SB_NODE_TOKEN_SECRET: NODE_TOKEN_SECRET, SB_API_KEY: '' },
    request: (base) => post(`${base}/v1/nodes/register`, JOIN_TOKEN, registerBody({ node_id: 'early-1' })),
  },
  {
    service: 'selector',
    secrets: { SB_JOIN_TOKEN: '', SB_NODE_TOKEN_SECRET: '', SB_API_KEY: API_KEY },
    request: (base) => post(`${base}/v1/jobs`, API_KEY, { src_lang: 'zh', tgt_lang: 'en' }),
  },
  { service: 'worker', secrets: NO_SECRETS, request: (base) => fetch(`${base}/v1/anything`) },
];

describe('a service started before its Redis', () => {
  const services: LaunchedService[] = [];
  const servers: RedisServerHandle[] = [];
  afterAll(async () => {
    await Promise.all(services.map((s) => stopService(s, 0)));
    await Promise.all(servers.map((s) => s.destroy()));
  });

  it.each(CASES)(
    '$service: says so in one line, answers /healthz 200 and /readyz 503, then becomes ready by itself',
    async ({ service, secrets, request }) => {
      const [redisPort, httpPort] = [await findFreePort(), await findFreePort()];
      const redisUrl = `redis://127.0.0.1:${redisPort}`;
      const base = `http://127.0.0.1:${httpPort}`;
      const lines: string[] = [];
      const started = Date.now();
      const launching = launchService(
        service,
        `services/${service}/main.ts`,
        {
          REDIS_URL: redisUrl,
          REDIS_CLUSTER_NODES: '',
          SB_AUTH: 'on',
          ...secrets,
          SB_PREFIX: uniquePrefix(),
          PORT: String(httpPort),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'info',
        },
        { echo: (line) => lines.push(line), timeoutMs: 120_000 },
      );
      launching.catch(() => undefined); // awaited below; a failure must not be unhandled meanwhile
      const line = unreachableLine(redisUrl);
      await waitFor(() => lines.some((l) => l.includes(`"msg":"${line}"`)), {
        timeoutMs: 20_000,
        message: `${service} logs the unreachable line; got:\n${lines.join('\n')}`,
      });

      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', service, version, node: process.version });
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      expect(await (await fetch(`${base}/metrics`)).text()).toContain(`sb_build_info{version="${version}"`);
      const early = await request(base);
      expect(early.status).toBe(503);
      expect(early.headers.get('retry-after')).toBe('1');
      expect(await early.json()).toMatchObject({ error: { code: 'SCHEDULER_DEPENDENCY_DOWN' } });
      if (service === 'gateway') {
        const refused = await TestSocket.refused(`ws://127.0.0.1:${httpPort}/ws/node`, JOIN_TOKEN);
        expect(refused.status).toBe(503);
        expect(refused.body).toContain('SCHEDULER_DEPENDENCY_DOWN');
      }

      const redis = await startRedisServer({ port: redisPort });
      servers.push(redis);
      const running = await launching;
      services.push(running);
      expect(running.port).toBe(httpPort);
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 20_000 });

      // once (and at most once more per 30 s it waited), never a stack trace or a flood of retries
      const said = lines.filter((l) => l.includes('cannot reach Redis'));
      expect(said.length).toBeGreaterThanOrEqual(1);
      expect(said.length).toBeLessThanOrEqual(1 + Math.floor((Date.now() - started) / 30_000));
      expect(lines.filter((l) => l.includes('ECONNREFUSED') && !l.includes('cannot reach Redis'))).toEqual(
        [],
      );
      expect(lines.some((l) => l.includes(`"msg":"reached Redis at ${redisUrl}"`))).toBe(true);
      const listening = lines.find((l) => l.includes('"msg":"listening"'))!;
      expect(JSON.parse(listening.slice(listening.indexOf('{')))).toMatchObject({
        port: httpPort,
        auth: true,
        version,
        node: process.version,
      });
    },
  );
});

describe('npm start and its launcher', () => {
  it('with REDIS_URL unreachable: exits 1 at once with the one line, password masked', async () => {
    const port = await findFreePort();
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/start-local.ts'], {
      env: {
        ...process.env,
        REDIS_URL: `redis://app:s3cret@127.0.0.1:${port}`,
        REDIS_CLUSTER_NODES: '',
        START_NODES: '0',
        START_JOBS_PER_S: '0',
      },
      encoding: 'utf8',
      timeout: 60_000, // a guard against a hang, not a timing assertion
    });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      `npm start: ${unreachableLine(`redis://app:***@127.0.0.1:${port}`)} (or unset both: npm start then runs its own redis-server)`,
    );
    expect(result.stdout + result.stderr).not.toContain('s3cret');
    expect(result.stdout).not.toContain('Switchboard is running');
  });

  it('a service that exits before it is ready: the reason and its last log lines', async () => {
    const failure = await launchService('selector-1', 'services/selector/main.ts', {
      SB_AUTH: 'on',
      ...NO_SECRETS,
      SB_SHARDS: '0',
      PORT: '0',
    }).then(
      () => {
        throw new Error('the selector started');
      },
      (err: Error) => err.message,
    );
    const [first, heading, logLine] = failure.split('\n');
    expect(first).toBe(
      'selector-1 exited with code 78 before it was ready: invalid configuration: ' +
        'SB_SHARDS: Too small: expected number to be >=1 (got "0"); ' +
        'SB_API_KEY: required by the selector when SB_AUTH=on (set SB_AUTH=off only for local development)',
    );
    expect(heading).toBe('  last log line of selector-1:');
    expect(logLine).toContain('"level":60');
  });

  it('a service whose PORT is taken: exits 1 at once with one line naming the port', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    try {
      const failure = await launchService('gateway-1', 'services/gateway/main.ts', {
        SB_AUTH: 'off',
        REDIS_URL: `redis://127.0.0.1:${await findFreePort()}`, // not even needed: the port comes first
        REDIS_CLUSTER_NODES: '',
        PORT: String(port),
        HOST: '127.0.0.1',
      }).then(
        () => {
          throw new Error('the gateway started');
        },
        (err: Error) => err.message,
      );
      expect(failure.split('\n')[0]).toBe(
        `gateway-1 exited with code 1 before it was ready: gateway cannot listen on 127.0.0.1:${port} (EADDRINUSE): ` +
          'set PORT to a free port (PORT=0: any free one) or stop what holds it',
      );
    } finally {
      holder.close();
    }
  });
});
