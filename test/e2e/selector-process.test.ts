import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { checkpointEntry, TestFleet } from '../support/fleet.ts';
import {
  API_KEY,
  JOIN_TOKEN,
  NODE_TOKEN_SECRET,
  scrape,
  startTestGateway,
  startTestWorker,
  type TestGateway,
  type TestWorker,
} from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { jobPlacementSchema, noAvailableNodeSchema } from '../../shared/protocol/client-messages.ts';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

describe('selectors (npm run start:selector): placement under contention', () => {
  const prefix = uniquePrefix();
  const ids = Array.from({ length: 20 }, (_, i) => `place-${i}`);
  let gw: TestGateway;
  let worker: TestWorker;
  let fleet: TestFleet;
  let redis: Redis;
  const selectors: LaunchedService[] = [];
  const url = (i: number) => `http://127.0.0.1:${selectors[i % selectors.length]!.port}`;

  async function post(i: number, body: unknown, key: string | null = API_KEY): Promise<Answer> {
    const res = await fetch(`${url(i)}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  const job = (extra: Record<string, unknown> = {}) => ({ src_lang: 'zh', tgt_lang: 'en', ...extra });

  beforeAll(async () => {
    const env = { SB_ACK_TIMEOUT_MS: '600000' }; // reservations stay for the whole test
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() }, env);
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() }, env);
    redis = new Redis(redisUrl());
    fleet = await TestFleet.connect(gw.ws, ids, { max_concurrent_jobs: 3 });
    ids.forEach((_, i) => fleet.heartbeat(i, 1));
    await waitFor(async () => {
      const entries = await Promise.all(ids.map((id) => checkpointEntry(redis, gw.keys, id)));
      return entries.every((e) => e?.status === 'ready' && e.pools.includes('zh:en'));
    });
    for (let i = 0; i < 4; i++) {
      selectors.push(
        await launchService('selector', 'services/selector/main.ts', {
          REDIS_URL: redisUrl(),
          SB_PREFIX: prefix,
          PORT: '0',
          SB_JOIN_TOKEN: JOIN_TOKEN,
          SB_NODE_TOKEN_SECRET: NODE_TOKEN_SECRET,
          SB_API_KEY: API_KEY,
          LOG_LEVEL: 'warn',
          ...env,
        }),
      );
    }
  });
  afterAll(async () => {
    await Promise.all(selectors.map((s) => stopService(s)));
    await fleet.close();
    await worker.close();
    await gw.close();
    await redis.quit();
  });

  it('refuses a wrong API key (401) and invalid bodies (400 naming the field) without reserving', async () => {
    expect((await post(0, job(), 'wrong-key')).status).toBe(401);
    expect((await post(0, job(), null)).status).toBe(401);
    const cases: [unknown, RegExp][] = [
      [{ tgt_lang: 'en' }, /^src_lang: /],
      [job({ pipeline: { use_asr: 'yes' } }), /^pipeline\.use_asr: /],
      [job({ features: { telepathy: true } }), /telepathy/],
      [job({ exclude_node_ids: ['bad id'] }), /^exclude_node_ids\.0: /],
      ['{"src_lang":', /not valid JSON/],
    ];
    for (const [body, message] of cases) {
      const answer = await post(0, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect((answer.body['error'] as { message: string }).message).toMatch(message);
    }
    const reserved = await Promise.all(ids.map((id) => redis.hget(gw.keys.forNode(id).node(id), 'reserved')));
    expect(reserved.every((r) => (r ?? '0') === '0')).toBe(true); // absent: 0
  });

  it('dry_run chooses and explains but reserves nothing', async () => {
    const answer = await post(1, job({ dry_run: true }));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      dry_run: true,
      pool: 'zh:en',
      breakdown: { total_nodes: 20, eligible: 20 },
    });
    jobPlacementSchema.strict().parse(answer.body); // the schema docs/JOB-API.md is generated from
    expect(ids).toContain(answer.body['node_id']);
    const reserved = await Promise.all(ids.map((id) => redis.hget(gw.keys.forNode(id).node(id), 'reserved')));
    expect(reserved.every((r) => (r ?? '0') === '0')).toBe(true); // absent: 0
  });

  it('the same job_id twice is one job and one reservation', async () => {
    const first = await post(0, job({ job_id: 'idem-1' }));
    const again = await post(2, job({ job_id: 'idem-1' }));
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const nodeId = first.body['node_id'] as string;
    expect(await redis.hget(gw.keys.forNode(nodeId).node(nodeId), 'reserved')).toBe('1');
    const view = (await (
      await fetch(`${url(3)}/v1/jobs/idem-1`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).json()) as Record<string, unknown>;
    expect(view).toMatchObject({ job_id: 'idem-1', status: 'dispatched', node_id: nodeId, attempt_id: 1 });
    expect(await redis.xlen(gw.keys.forNode(nodeId).inbox(nodeId))).toBe(1);
  });

  it('4 selectors × 2,000 concurrent jobs on 20 nodes of 3 slots: never over-committed; every answer placed or explained', async () => {
    const answers = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => post(i, job({ routing_key: `s-${i % 50}` }))),
    );
    const placed = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status !== 201);
    for (const a of refused) {
      expect(a.status).toBe(503);
      expect(a.body).toMatchObject({ error: { code: 'NO_AVAILABLE_NODE' } });
      noAvailableNodeSchema.strict().parse(a.body);
      const b = a.body['breakdown'] as {
        total_nodes: number;
        eligible: number;
        rejected: Record<string, number>;
      };
      expect(b.eligible + Object.values(b.rejected).reduce((x, y) => x + y, 0)).toBe(b.total_nodes);
      expect(b.total_nodes).toBe(20);
    }
    const reserved = await Promise.all(
      ids.map(async (id) => Number(await redis.hget(gw.keys.forNode(id).node(id), 'reserved'))),
    );
    for (const r of reserved) expect(r).toBeLessThanOrEqual(3);
    // every slot a 201 claimed is one reservation, and the idempotent job above holds one
    expect(placed.length + 1).toBe(reserved.reduce((a, b) => a + b, 0));
    expect(placed.length + 1).toBe(60); // 20 nodes × 3 slots: all filled, none twice
    // the conflict path ran: snapshots lagged behind reservations and the live record said no
    const conflicts = await Promise.all(
      selectors.map((s) => scrape(`http://127.0.0.1:${s.port}/metrics`, 'sb_reservation_conflicts_total')),
    );
    expect(conflicts.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('a repeated job_id gets its job back with the fleet full (idempotency before selection)', async () => {
    const fresh = await post(0, job({ job_id: 'idem-full' }));
    expect(fresh.status).toBe(503); // every slot is taken (the test above)
    expect(fresh.body).toMatchObject({ error: { code: 'NO_AVAILABLE_NODE' } });
    const first = await redis.hget(gw.keys.job('idem-1'), 'placement');
    for (const i of [0, 1, 2, 3]) {
      const again = await post(i, job({ job_id: 'idem-1' }));
      expect(again.status).toBe(200);
      expect(again.body).toEqual(JSON.parse(first!));
    }
    expect(await redis.exists(gw.keys.job('idem-full'))).toBe(0); // its id stays free
  });
});
