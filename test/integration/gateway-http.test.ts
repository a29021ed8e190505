import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { verifyNodeToken } from '../../shared/node-token.ts';
import { heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import {
  inspectClient,
  JOIN_TOKEN,
  nodeToken,
  NODE_TOKEN_SECRET,
  startTestGateway,
  type TestGateway,
} from '../support/service-harness.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

describe('gateway over HTTP', () => {
  let gw: TestGateway;
  let redis: Redis | Cluster;
  let seq = 0;
  const nextId = () => `http-node-${++seq}`;
  const nodeHash = (id: string) => gw.keys.forNode(id).node(id);

  beforeAll(async () => {
    gw = await startTestGateway(uniquePrefix(), { redisUrl: redisUrl() }, { SB_MAX_MESSAGE_BYTES: '4096' });
    redis = inspectClient(gw.config);
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  async function post(path: string, body: unknown, token: string | null = JOIN_TOKEN) {
    const res = await fetch(`${gw.http}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  }
  const register = (id: string, token?: string | null) =>
    post('/v1/nodes/register', registerBody({ node_id: id }), token);
  const heartbeat = (id: string, body: unknown = heartbeatBody(id), token: string | null = nodeToken(id)) =>
    post(`/v1/nodes/${id}/heartbeat`, body, token);

  it('registers (201 ack without type) and heartbeats (200 with assignments)', async () => {
    const id = nextId();
    const reg = await register(id);
    expect(reg.status).toBe(201);
    const { node_token: token, node_token_expires_at: expiresAt, ...rest } = reg.body;
    expect(rest).toEqual({
      node_id: id,
      message: 'registered',
      status: 'registering',
      heartbeat_interval_ms: 15000,
      node_ttl_ms: 45000,
    });
    expect(verifyNodeToken([NODE_TOKEN_SECRET], token as string)).toEqual({
      nodeId: id,
      generation: 0,
      expiresAt,
    });
    expect(expiresAt).toBeGreaterThan(Date.now() + 86_000_000);
    const hb = await heartbeat(id, heartbeatBody(id), reg.body['node_token'] as string);
    expect(hb).toMatchObject({ status: 200, body: { ok: true, assignments: [] } });
    expect(await redis.hget(nodeHash(id), 'status')).toBe('ready');
  });

  it('401 without or with a wrong token; 403 for a node token used for another node', async () => {
    const a = nextId();
    const b = nextId();
    await register(a);
    await register(b);
    expect((await register(nextId(), null)).status).toBe(401);
    expect((await heartbeat(a, heartbeatBody(a), 'nope-nope')).body).toMatchObject({
      error: { code: 'UNAUTHORIZED' },
    });
    const tokenA = nodeToken(a);
    const asB = await register(b, tokenA);
    expect(asB.status).toBe(403);
    expect(asB.body).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect((await heartbeat(b, heartbeatBody(b), tokenA)).status).toBe(403);
    expect((await heartbeat(a, heartbeatBody(a), tokenA)).status).toBe(200);
  });

  it('400 naming the field for an invalid body, and nothing changes', async () => {
    const id = nextId();
    await register(id);
    const before = await redis.hgetall(nodeHash(id));
    const bad = await heartbeat(id, heartbeatBody(id, {}, { mem_percent: -1 }));
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'INVALID_MESSAGE' } });
    expect((bad.body['error'] as { message: string }).message).toMatch(/resource_usage\.mem_percent/);
    const notJson = await heartbeat(id, '{"node_id":');
    expect(notJson).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_MESSAGE', message: 'body is not valid JSON' } },
    });
    const badReg = await post('/v1/nodes/register', registerBody({ accept_public_jobs: 'yes' }));
    expect(badReg.status).toBe(400);
    expect((badReg.body['error'] as { message: string }).message).toMatch(/^accept_public_jobs: /);
    expect(await redis.hgetall(nodeHash(id))).toEqual(before);
  });

  it('400 NODE_ID_MISMATCH when the body names another node than the URL', async () => {
    const id = nextId();
    await register(id);
    const res = await heartbeat(id, heartbeatBody('someone-else'));
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'NODE_ID_MISMATCH' } } });
  });

  it('404 NOT_REGISTERED for a heartbeat of an unknown node', async () => {
    const id = nextId();
    const res = await heartbeat(id);
    expect(res).toMatchObject({ status: 404, body: { error: { code: 'NOT_REGISTERED' } } });
    expect(await redis.exists(nodeHash(id))).toBe(0);
  });

  it('413 for a body over the size limit', async () => {
    const id = nextId();
    await register(id);
    const res = await heartbeat(id, heartbeatBody(id, { padding: 'x'.repeat(5000) }));
    expect(res).toMatchObject({ status: 413, body: { error: { code: 'INVALID_MESSAGE' } } });
    const reg = await post('/v1/nodes/register', registerBody({ padding: 'x'.repeat(5000) }));
    expect(reg.status).toBe(413);
  });

  it('serves /healthz, /readyz and /metrics; unknown routes are 404 JSON', async () => {
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${gw.http}/readyz`)).json()).toEqual({ ready: true });
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/sb_heartbeat_duration_seconds_bucket/);
    const missing = await fetch(`${gw.http}/v1/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });
});
