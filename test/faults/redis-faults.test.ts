import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { FaultRig } from '../support/fault-rig.ts';
import { waitFor } from '../support/redis.ts';

/**
 * Fault suite, standalone Redis: killed mid-flow (SIGKILL, jobs flowing) and started again,
 * with and without persistence, and stalled (SIGSTOP: connected, answering nothing). The
 * invariants of FaultRig hold in each; without persistence the scheduler forgets what it held,
 * and clients submit the lost jobs again with their job_id.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGKILL, half a second down, started again on the same port. */
async function restart(server: RedisServerHandle): Promise<void> {
  await server.kill();
  await sleep(500);
  await server.restart();
}

describe('Redis faults mid-flow', () => {
  let server: RedisServerHandle | undefined;
  let rig: FaultRig | undefined;
  afterEach(async () => {
    await rig?.stop();
    await server?.destroy();
  });

  async function run(
    args: string[],
    fault: (server: RedisServerHandle) => Promise<void>,
    nodes: { nodes: number; linguaNodes?: number } = { nodes: 6 },
  ): Promise<FaultRig> {
    server = await startRedisServer({ args });
    rig = new FaultRig({
      redis: { url: server.url },
      services: { gateway: 1, worker: 1, selector: 1 },
      ...nodes,
    });
    await rig.start();
    rig.startJobs(10);
    await sleep(1500);
    await fault(server);
    await sleep(2500);
    await rig.stopJobs();
    const statuses = await rig.settleJobs();
    console.log(`${fault.name || 'stall'} (${args.join(' ') || 'no persistence'}): ${rig.summary(statuses)}`);
    expect(statuses['finished'] ?? 0).toBeGreaterThan(0);
    expect([...rig.unplaced]).toEqual([]); // every submitted job was accepted in the end
    await rig.assertIdle();
    await rig.assertServing();
    expect(rig.overCapacity).toEqual([]);
    return rig;
  }

  it('with AOF (appendfsync always): nothing is lost, every job settles, nothing leaks', async () => {
    const r = await run(['--appendonly', 'yes', '--appendfsync', 'always'], restart);
    expect([...r.resubmitted]).toEqual([]);
  });

  it('without persistence: Redis comes back empty; lost jobs are resubmitted and every job settles, nothing leaks', async () => {
    await run([], restart);
  });

  it('emptied by FLUSHALL (lingua nodes that ignore errors among ours): every node registers again, every job settles', async () => {
    const r = await run(
      ['--appendonly', 'yes'],
      async function flushall(s) {
        const admin = new Redis(s.url);
        await admin.flushall();
        admin.disconnect();
      },
      { nodes: 3, linguaNodes: 3 },
    );
    // the lingua nodes ignore NOT_REGISTERED: only the 4404 close brings them back
    await waitFor(
      async () => {
        const ids = r.agents.map((a) => a.nodeId!);
        const statuses = await Promise.all(
          ids.map((id) => r.inspect.hget(r.keys.forNode(id).node(id), 'status')),
        );
        return statuses.every((status) => status === 'ready');
      },
      { timeoutMs: 10_000, message: 'every node registered again' },
    );
  });

  it('stalled for 3 s (SIGSTOP): clients get 503 meanwhile; then every job settles, nothing leaks', async () => {
    const r = await run(['--appendonly', 'yes'], async (s) => {
      process.kill(s.pid, 'SIGSTOP');
      const before = rig!.unavailable;
      await sleep(3000);
      process.kill(s.pid, 'SIGCONT');
      expect(rig!.unavailable).toBeGreaterThan(before); // 503s while it lasted, not hung requests
    });
    expect([...r.resubmitted]).toEqual([]);
    expect(r.declined).toBe(0);
  });
});
