import { request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Issue 13 deliverable 2: SB_GATEWAY_PROCESSES=2 runs one primary and two gateway processes
 * on one port. Connections are served by both, /metrics on the port answers the aggregate of
 * both, a killed child is replaced, and SIGTERM stops every process gracefully (1001, exit 0).
 */

/** GET on a fresh connection (no keep-alive), so each request may reach another process. */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    // a connection handed to a child at the moment it dies is lost: the caller tries again
    req.setTimeout(2000, () => req.destroy(new Error('no answer in 2 s')));
    req.end();
  });
}

async function pidsAnswering(port: number, tries = 12): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < tries; i++)
    pids.add((JSON.parse((await get(port, '/healthz')).body) as { pid: number }).pid);
  return pids;
}

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('SB_GATEWAY_PROCESSES=2: two gateway processes on one port', () => {
  let gw: LaunchedService;
  afterAll(async () => {
    if (gw) await stopService(gw, 0);
  });

  it('serves from both, aggregates metrics, replaces a killed child, stops all on SIGTERM', async () => {
    gw = await launchService('gateway', 'services/gateway/main.ts', {
      REDIS_URL: redisUrl(),
      SB_PREFIX: uniquePrefix(),
      PORT: '0',
      SB_AUTH: 'off',
      LOG_LEVEL: 'info',
      SB_GATEWAY_PROCESSES: '2',
    });
    const first = await waitFor(
      async () => {
        const pids = await pidsAnswering(gw.port);
        return pids.size === 2 && pids;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(first.has(gw.pid)).toBe(false); // the primary serves nothing itself

    const ids = ['procs-1', 'procs-2', 'procs-3', 'procs-4'];
    const sockets = await Promise.all(ids.map(() => TestSocket.open(`ws://127.0.0.1:${gw.port}/ws/node`)));
    for (const [i, socket] of sockets.entries()) {
      socket.send(frame('node_register', registerBody({ node_id: ids[i] })));
      await socket.nextOfType('node_register_ack');
      socket.send(frame('node_heartbeat', heartbeatBody(ids[i]!)));
    }
    // every process's counters, whichever process answers the scrape
    await waitFor(
      async () => {
        const text = (await get(gw.port, '/metrics')).body;
        return (
          metric(text, 'sb_ws_connections') === 4 &&
          metric(text, 'sb_heartbeats_total', 'outcome="applied"') === 4 &&
          metric(text, 'sb_build_info') === 1
        );
      },
      { timeoutMs: 10_000 },
    );

    // a child killed: its sockets drop, another process takes its place
    const [victim] = [...first];
    process.kill(victim!, 'SIGKILL');
    const replaced = await waitFor(
      async () => {
        const pids = await pidsAnswering(gw.port);
        return pids.size === 2 && !pids.has(victim!) && pids;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const survivors = sockets.filter((s) => s.ws.readyState === s.ws.OPEN);
    expect(survivors.length).toBeGreaterThan(0); // the other child's sockets stayed up
    expect(survivors.length).toBeLessThan(4);

    // SIGTERM to the primary: every child closes its sockets with 1001 and exits; the primary exits 0
    const exit = stopService(gw);
    for (const socket of survivors) expect((await socket.closed).code).toBe(1001);
    expect(await exit).toBe(0);
    for (const pid of replaced) expect(alive(pid)).toBe(false);
  });
});
