import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { checkpointEntry, TestFleet } from '../support/fleet.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import {
  ADMIN_API_KEY,
  API_KEY,
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';

const ACME = 'acme-key-0001';
const ACME_NEXT = 'acme-key-0002';
const GLOBEX = 'globex-key-0001';

/** Issue 11 defect 8: separate client and admin keys; a job is readable only by its tenant. */
describe('selector API keys and tenants', () => {
  const prefix = uniquePrefix();
  let gw: TestGateway;
  let worker: TestWorker;
  let selector: TestSelector;
  let fleet: TestFleet;
  let redis: Redis;

  beforeAll(async () => {
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() });
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() });
    selector = await startTestSelector(
      prefix,
      { redisUrl: redisUrl() },
      { SB_API_KEYS: `acme:${ACME},acme:${ACME_NEXT},globex:${GLOBEX}` },
    );
    redis = new Redis(redisUrl());
    fleet = await TestFleet.connect(gw.ws, ['tenant-node-1'], { max_concurrent_jobs: 16 });
    fleet.heartbeat(0, 1);
    await waitFor(async () => (await checkpointEntry(redis, gw.keys, 'tenant-node-1'))?.status === 'ready');
    await waitFor(
      async () => ((await (await selector.api('/v1/snapshot')).json()) as { nodes: number }).nodes === 1,
    );
  });
  afterAll(async () => {
    await fleet.close();
    await selector.close();
    await worker.close();
    await gw.close();
    await redis.quit();
  });

  const call = async (key: string, path: string, body?: unknown) => {
    const res = await fetch(`${selector.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const job = (extra: Record<string, unknown> = {}) => ({ src_lang: 'zh', tgt_lang: 'en', ...extra });

  it('client keys cannot use the admin routes; admin keys can, and may do what clients do', async () => {
    for (const path of ['/v1/nodes', '/v1/nodes/tenant-node-1', '/v1/pools', '/v1/snapshot']) {
      expect((await call(API_KEY, path)).status, path).toBe(403);
      expect((await call(ADMIN_API_KEY, path)).status, path).toBe(200);
    }
    const drain = await call(ACME, '/v1/nodes/tenant-node-1/drain', {});
    expect(drain).toMatchObject({ status: 403, body: { error: { code: 'UNAUTHORIZED' } } });
    expect(await redis.hget(gw.keys.forNode('tenant-node-1').node('tenant-node-1'), 'draining')).toBeNull();
    expect((await call(ADMIN_API_KEY, '/v1/jobs', job({ dry_run: true }))).status).toBe(200);
    expect((await call('not-a-key-at-all', '/v1/jobs', job({ dry_run: true }))).status).toBe(401);
  });

  it("a job is readable by its tenant's keys (also a rotated one) and admins; another tenant gets 404", async () => {
    const placed = await call(ACME, '/v1/jobs', job({ job_id: 'acme-job-1' }));
    expect(placed.status).toBe(201);
    expect((await call(ACME, '/v1/jobs/acme-job-1')).status).toBe(200);
    expect((await call(ACME_NEXT, '/v1/jobs/acme-job-1')).status).toBe(200);
    expect((await call(ADMIN_API_KEY, '/v1/jobs/acme-job-1')).status).toBe(200);
    const other = await call(GLOBEX, '/v1/jobs/acme-job-1');
    expect(other).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    expect((await call(API_KEY, '/v1/jobs/acme-job-1')).status).toBe(404);
    // the same job_id from another tenant does not get the first answer
    const repeat = await call(GLOBEX, '/v1/jobs', job({ job_id: 'acme-job-1' }));
    expect(repeat).toMatchObject({ status: 409, body: { error: { code: 'JOB_ID_CONFLICT' } } });
    expect(JSON.stringify(repeat.body)).not.toContain('tenant-node-1');
    // from its own tenant: the first answer (idempotent)
    expect(await call(ACME_NEXT, '/v1/jobs', job({ job_id: 'acme-job-1' }))).toMatchObject({
      status: 200,
      body: { job_id: 'acme-job-1' },
    });
  });

  it('tenant_id is checked against the key; an admin key acts for the tenant it names', async () => {
    const wrong = await call(ACME, '/v1/jobs', job({ job_id: 'acme-job-2', tenant_id: 'globex' }));
    expect(wrong.status).toBe(403);
    expect(wrong.body).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect((wrong.body['error'] as { message: string }).message).toMatch(/^tenant_id: /);
    expect((await call(ACME, '/v1/jobs/acme-job-2')).status).toBe(404); // nothing was created
    expect((await call(ACME, '/v1/jobs', job({ job_id: 'acme-job-3', tenant_id: 'acme' }))).status).toBe(201);

    const forGlobex = await call(
      ADMIN_API_KEY,
      '/v1/jobs',
      job({ job_id: 'admin-job-1', tenant_id: 'globex' }),
    );
    expect(forGlobex.status).toBe(201);
    expect((await call(GLOBEX, '/v1/jobs/admin-job-1')).status).toBe(200);
    expect((await call(ACME, '/v1/jobs/admin-job-1')).status).toBe(404);
  });

  it('the single SB_API_KEY still works, as tenant "default"', async () => {
    expect((await call(API_KEY, '/v1/jobs', job({ job_id: 'default-job-1' }))).status).toBe(201);
    expect((await call(API_KEY, '/v1/jobs/default-job-1')).status).toBe(200);
    expect((await call(ACME, '/v1/jobs/default-job-1')).status).toBe(404);
  });
});
