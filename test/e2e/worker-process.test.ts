import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { checkpointEntry, TestFleet } from '../support/fleet.ts';
import { scrape, startTestGateway, type TestGateway } from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';

const started: LaunchedService[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => stopService(s, 0)));
});

async function worker(prefix: string, env: Record<string, string> = {}): Promise<LaunchedService> {
  const w = await launchService('worker', 'services/worker/main.ts', {
    REDIS_URL: redisUrl(),
    SB_PREFIX: prefix,
    PORT: '0',
    SB_AUTH: 'off',
    LOG_LEVEL: 'warn',
    ...env,
  });
  started.push(w);
  return w;
}

describe('worker processes (npm run start:worker)', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('SIGKILL in the middle of a flush loses nothing: after a restart every node’s latest state is published', async () => {
    const prefix = uniquePrefix();
    const gw: TestGateway = await startTestGateway(
      prefix,
      { redisUrl: redisUrl() },
      { SB_WS_RATE_LIMIT: '10000' },
    );
    const ids = Array.from({ length: 30 }, (_, i) => `crash-${i}`);
    const stalled = await worker(prefix, { SB_FAULT_FLUSH_PAUSE_MS: '600000' });
    try {
      const fleet = await TestFleet.connect(gw.ws, ids);
      // some flush has taken a batch and hangs before publishing it
      const taken = () =>
        Promise.all(
          Array.from({ length: gw.keys.shards }, (_, s) => redis.scard(gw.keys.shard(s).dirtyTaken)),
        );
      await waitFor(async () => (await taken()).some((n) => n > 0), { timeoutMs: 10000 });
      stalled.proc.kill('SIGKILL');
      await stalled.exited;
      expect((await taken()).some((n) => n > 0)).toBe(true);

      // the nodes keep living while no worker runs: their latest state must end up published
      ids.forEach((_, i) => fleet.heartbeat(i, 10, { cpu_percent: 60 + (i % 30) }));
      await waitFor(
        async () => (await redis.hget(gw.keys.forNode(ids[29]!).node(ids[29]!), 'hb_ts')) === '10',
      );

      await worker(prefix, { SB_REAPER_INTERVAL_MS: '500' });
      await waitFor(
        async () => {
          const entries = await Promise.all(ids.map((id) => checkpointEntry(redis, gw.keys, id)));
          return entries.every((e, i) => e?.status === 'ready' && e.cpu === 60 + (i % 30));
        },
        { timeoutMs: 30000, intervalMs: 200 },
      );
      // and no batch stays taken: the crashed flush's was republished (a flush round of the new
      // worker may hold a batch of its own for a moment, so this is waited for, not sampled once)
      await waitFor(async () => (await taken()).every((n) => n === 0), { timeoutMs: 10000 });
      await fleet.close();
    } finally {
      await gw.close();
    }
  });

  it('two workers: the reaper runs once per tick; a silent node is offline within TTL + one tick', async () => {
    const prefix = uniquePrefix();
    const tickMs = 300;
    const ttlMs = 1000;
    const env = { SB_REAPER_INTERVAL_MS: String(tickMs), SB_NODE_TTL_MS: String(ttlMs) };
    const gw = await startTestGateway(prefix, { redisUrl: redisUrl() }, env);
    try {
      const workers = [await worker(prefix, env), await worker(prefix, env)];
      const ticks = async () => {
        const counts = await Promise.all(
          workers.map((w) => scrape(`http://127.0.0.1:${w.port}/metrics`, 'sb_reaper_ticks_total')),
        );
        return counts.reduce((a, b) => a + b, 0);
      };
      const t0 = Date.now();
      const before = await ticks();
      await new Promise((r) => setTimeout(r, 3000));
      const elapsed = Date.now() - t0;
      const ran = (await ticks()) - before;
      // one tick per interval for the deployment, not one per worker
      expect(ran).toBeLessThanOrEqual(Math.ceil(elapsed / tickMs) + 1);
      expect(ran).toBeGreaterThanOrEqual(Math.floor(elapsed / tickMs / 2));

      const id = 'silent-1';
      const fleet = await TestFleet.connect(gw.ws, [id]);
      fleet.heartbeat(0, 1);
      await waitFor(async () => (await checkpointEntry(redis, gw.keys, id))?.status === 'ready');
      const lastContact = Number(await redis.zscore(gw.keys.forNode(id).live, id));
      // the socket stays open (no close to count on); only the reaper can find it
      await waitFor(async () => (await redis.hget(gw.keys.forNode(id).node(id), 'status')) === 'offline', {
        timeoutMs: 10000,
        intervalMs: 20,
      });
      const offlineAt = Number(await redis.zscore(gw.keys.forNode(id).offline, id));
      expect(offlineAt - lastContact).toBeGreaterThanOrEqual(ttlMs);
      expect(offlineAt - lastContact).toBeLessThanOrEqual(ttlMs + tickMs + 250); // + job pickup
      await waitFor(async () => (await checkpointEntry(redis, gw.keys, id))?.status === 'offline');
      await fleet.close();
    } finally {
      await gw.close();
    }
  });

  it('removes a node offline past the retention period: out of the snapshot, its pools and Redis', async () => {
    const prefix = uniquePrefix();
    const env = { SB_REAPER_INTERVAL_MS: '300', SB_NODE_RETENTION_MS: '1000' };
    const gw = await startTestGateway(prefix, { redisUrl: redisUrl() }, env);
    try {
      await worker(prefix, env);
      const id = 'retired-1';
      const k = gw.keys.forNode(id);
      const fleet = await TestFleet.connect(gw.ws, [id]);
      fleet.heartbeat(0, 1);
      await waitFor(async () => ((await checkpointEntry(redis, gw.keys, id))?.pools.length ?? 0) > 0);
      await fleet.close(); // offline now
      await waitFor(async () => (await redis.hexists(k.checkpoint, id)) === 0, { timeoutMs: 10000 });
      await waitFor(async () => (await redis.exists(k.node(id))) === 0);
      expect(await redis.zscore(k.offline, id)).toBeNull();
      // its capability blobs went with it (the last reference)
      expect(await redis.hlen(k.caps)).toBe(0);
      const [last] = await redis.xrevrange(k.deltas, '+', '-', 'COUNT', 1);
      expect(last?.[1]).toContain(`["${id}"]`);
    } finally {
      await gw.close();
    }
  });
});
