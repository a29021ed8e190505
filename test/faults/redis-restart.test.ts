import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { FaultRig } from '../support/fault-rig.ts';

/**
 * Fault suite: Redis killed mid-flow (SIGKILL, jobs flowing) and started again, with and
 * without persistence. The invariants of FaultRig hold in both; without persistence the
 * scheduler forgets what it held, and clients submit the lost jobs again with their job_id.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Redis restart mid-flow', () => {
  let server: RedisServerHandle | undefined;
  let rig: FaultRig | undefined;
  afterEach(async () => {
    await rig?.stop();
    await server?.destroy();
  });

  async function run(args: string[]): Promise<FaultRig> {
    server = await startRedisServer({ args });
    rig = new FaultRig({
      redis: { url: server.url },
      services: { gateway: 1, worker: 1, selector: 1 },
      nodes: 6,
    });
    await rig.start();
    rig.startJobs(10);
    await sleep(1500);
    await server.kill();
    await sleep(500);
    await server.restart();
    await sleep(2500);
    await rig.stopJobs();
    const statuses = await rig.settleJobs();
    console.log(`redis restart ${args.join(' ') || '(no persistence)'}: ${rig.summary(statuses)}`);
    expect(statuses['finished'] ?? 0).toBeGreaterThan(0);
    await rig.assertIdle();
    await rig.assertServing();
    expect(rig.overCapacity).toEqual([]);
    return rig;
  }

  it('with AOF (appendfsync always): nothing is lost, every job settles, nothing leaks', async () => {
    const r = await run(['--appendonly', 'yes', '--appendfsync', 'always']);
    expect([...r.resubmitted]).toEqual([]);
  });

  it('without persistence: Redis comes back empty; lost jobs are resubmitted and every job settles, nothing leaks', async () => {
    await run([]);
  });
});
