import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { FaultRig, type ServiceKind } from '../support/fault-rig.ts';

/**
 * Fault suite: SIGKILL of each service mid-flow (jobs flowing), two of each running. Nothing is
 * restarted: the surviving replica carries on (nodes move to the other gateway, clients retry on
 * the other selector, the other worker runs the liveness tick and the queued derived work).
 * After each fault the invariants of FaultRig hold. Redis with AOF, as the README requires.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SIGKILL of a service mid-flow', () => {
  let server: RedisServerHandle;
  let rig: FaultRig;
  beforeAll(async () => {
    server = await startRedisServer({ args: ['--appendonly', 'yes'] });
    rig = new FaultRig({
      redis: { url: server.url },
      services: { gateway: 2, worker: 2, selector: 2 },
      nodes: 6,
    });
    await rig.start();
  });
  afterAll(async () => {
    await rig?.stop();
    await server?.destroy();
  });

  it.each<ServiceKind>(['gateway', 'worker', 'selector'])(
    '%s: the other replica carries on; every job settles, nothing leaks, never over capacity',
    async (kind) => {
      rig.startJobs(10);
      await sleep(1200);
      await rig.kill(kind);
      await sleep(2500);
      await rig.stopJobs();
      const statuses = await rig.settleJobs();
      console.log(`SIGKILL ${kind}: ${rig.summary(statuses)}`);
      expect(statuses['finished'] ?? 0).toBeGreaterThan(0);
      expect([...rig.unplaced]).toEqual([]); // every submitted job was accepted in the end
      expect([...rig.unplaced]).toEqual([]); // every submitted job was accepted in the end
      await rig.assertIdle();
      await rig.assertServing();
      expect(rig.overCapacity).toEqual([]);
      expect(rig.declined).toBe(0);
      expect([...rig.resubmitted]).toEqual([]);
    },
  );
});
