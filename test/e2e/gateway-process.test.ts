import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { TestSocket } from '../support/ws-client.ts';

describe('npm run start:gateway (separate process)', () => {
  const started: LaunchedService[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => stopService(s, 0)));
  });

  it('serves nodes, then on SIGTERM closes sockets with 1001 and exits 0', async () => {
    const gw = await launchService('gateway', 'services/gateway/main.ts', {
      REDIS_URL: redisUrl(),
      SB_PREFIX: uniquePrefix(),
      PORT: '0',
      SB_AUTH: 'off',
      LOG_LEVEL: 'info',
    });
    started.push(gw);
    const socket = await TestSocket.open(`ws://127.0.0.1:${gw.port}/ws/node`);
    socket.send(frame('node_register', registerBody({ node_id: 'proc-1' })));
    await socket.nextOfType('node_register_ack');
    socket.send(frame('node_heartbeat', heartbeatBody('proc-1')));

    const exit = stopService(gw);
    expect((await socket.closed).code).toBe(1001);
    expect(await exit).toBe(0);
  });

  it('refuses to start on a bad configuration, listing every bad variable', () => {
    const result = spawnSync('npm', ['run', '--silent', 'start:gateway'], {
      env: {
        ...process.env,
        SB_SHARDS: 'many',
        SB_AUTH: 'on',
        SB_JOIN_TOKEN: '',
        SB_NODE_TOKEN_SECRET: '',
        SB_API_KEY: '',
      },
      encoding: 'utf8',
      timeout: 30000,
    });
    expect(result.status).toBe(78);
    const out = result.stdout + result.stderr;
    // the schema's problems and the missing secrets in one run; only the gateway's secrets
    for (const name of ['SB_SHARDS', 'SB_JOIN_TOKEN', 'SB_NODE_TOKEN_SECRET']) expect(out).toContain(name);
    expect(out).not.toContain('SB_API_KEY');
  });
});
