import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { spawnSync } from 'node:child_process';
import { NodeAgent } from '../../agent/node-agent.ts';
import { issueOutOfBand } from '../../scripts/lib/out-of-band-token.ts';
import type { RegistrationBody } from '../../agent/protocol.ts';
import { issueNodeToken, verifyNodeToken } from '../../shared/node-token.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import {
  ADMIN_API_KEY,
  API_KEY,
  inspectClient,
  JOIN_TOKEN,
  nodeToken,
  NODE_TOKEN_SECRET,
  startTestGateway,
  startTestSelector,
  type TestGateway,
  type TestSelector,
} from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/** Issue 11 defect 8: the join token is no master key; node tokens expire and can be revoked. */
describe('node credentials', () => {
  const prefix = uniquePrefix();
  let gw: TestGateway;
  let selector: TestSelector;
  let redis: Redis | Cluster;
  let seq = 0;
  const nextId = () => `cred-node-${++seq}`;
  const status = (id: string) => redis.hget(gw.keys.forNode(id).node(id), 'status');

  beforeAll(async () => {
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() });
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() });
    redis = inspectClient(gw.config);
  });
  afterAll(async () => {
    await selector.close();
    await gw.close();
    await redis.quit();
  });

  async function register(url: string, token: string, nodeId: string | null): Promise<TestSocket> {
    const socket = await TestSocket.open(url, token);
    socket.send(frame('node_register', registerBody({ node_id: nodeId })));
    return socket;
  }

  const http = (path: string, token: string, body: unknown) =>
    fetch(`${gw.http}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('the join token cannot take a node id whose connection is live: refused, socket closed, node untouched', async () => {
    const id = nextId();
    const owner = await register(gw.ws, JOIN_TOKEN, id);
    await owner.nextOfType('node_register_ack');
    const epoch = await redis.hget(gw.keys.forNode(id).node(id), 'epoch');

    const thief = await register(gw.ws, JOIN_TOKEN, id);
    expect(await thief.nextOfType('error')).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((await thief.closed).code).toBe(4403);
    expect(await redis.hget(gw.keys.forNode(id).node(id), 'epoch')).toBe(epoch);
    // the owner's socket still works
    owner.send(frame('node_heartbeat', heartbeatBody(id)));
    await waitFor(async () => (await status(id)) === 'ready');
    await owner.close();
  });

  it('the join token over HTTP may register, nothing else (heartbeats and job frames need the node token)', async () => {
    const id = nextId();
    const reg = await http('/v1/nodes/register', JOIN_TOKEN, registerBody({ node_id: id }));
    expect(reg.status).toBe(201);
    const hb = await http(`/v1/nodes/${id}/heartbeat`, JOIN_TOKEN, heartbeatBody(id));
    expect(hb.status).toBe(403);
    const result = await http(`/v1/nodes/${id}/jobs/j-1/result`, JOIN_TOKEN, {
      job_id: 'j-1',
      attempt_id: 1,
      success: true,
    });
    expect(result.status).toBe(403);
    // and re-registering the live HTTP node with it is refused too
    expect((await http('/v1/nodes/register', JOIN_TOKEN, registerBody({ node_id: id }))).status).toBe(403);
    const token = ((await reg.json()) as { node_token: string }).node_token;
    expect((await http(`/v1/nodes/${id}/heartbeat`, token, heartbeatBody(id))).status).toBe(200);
  });

  it('a lingua node just works: node_id null, join token in ?token=, reconnect = heartbeat then register with its old id', async () => {
    const first = await register(`${gw.ws}?token=${JOIN_TOKEN}`, '', null);
    const ack = await first.nextOfType('node_register_ack');
    const id = ack['node_id'] as string;
    first.send(frame('node_heartbeat', heartbeatBody(id)));
    await waitFor(async () => (await status(id)) === 'ready');
    await first.close();
    await waitFor(async () => (await status(id)) === 'offline');

    const again = await TestSocket.open(`${gw.ws}?token=${JOIN_TOKEN}`);
    again.send(frame('node_heartbeat', heartbeatBody(id))); // before register: ignored
    again.send(frame('node_register', registerBody({ node_id: id })));
    expect(await again.nextOfType('node_register_ack')).toMatchObject({ node_id: id });
    // the socket proves the node from now on: it re-registers and heartbeats on it
    again.send(frame('node_register', registerBody({ node_id: id })));
    await again.nextOfType('node_register_ack');
    again.send(frame('node_heartbeat', heartbeatBody(id)));
    await waitFor(async () => (await status(id)) === 'ready');
    await again.close();
  });

  it('a gateway shutting down hands its sockets over: the join token may re-register them elsewhere at once', async () => {
    const leaving = await startTestGateway(prefix, { redisUrl: redisUrl() });
    const id = nextId();
    const socket = await register(leaving.ws, JOIN_TOKEN, id);
    await socket.nextOfType('node_register_ack');
    await leaving.close();
    expect(await status(id)).toBe('registering'); // not offline: it moves
    const moved = await register(gw.ws, JOIN_TOKEN, id);
    expect(await moved.nextOfType('node_register_ack')).toMatchObject({ node_id: id });
    await moved.close();
  });

  it('node tokens expire; an expired or forged-generation token is refused at the upgrade', async () => {
    const id = nextId();
    const expired = nodeToken(id, { expiresAt: Date.now() - 1 });
    const refused = await TestSocket.refused(gw.ws, expired);
    expect(refused.status).toBe(401);
    expect(refused.body).toContain('expired');
    expect((await TestSocket.refused(gw.ws, nodeToken(id, { generation: 5 }))).status).toBe(401);
    const ok = await register(gw.ws, nodeToken(id), id);
    await ok.nextOfType('node_register_ack');
    await ok.close();
  });

  it('revocation: tokens stop verifying everywhere, the socket is closed, the node is offline, the join token cannot take it back; reset lets it once', async () => {
    const id = nextId();
    const socket = await register(gw.ws, JOIN_TOKEN, id);
    const token = (await socket.nextOfType('node_register_ack'))['node_token'] as string;
    socket.send(frame('node_heartbeat', heartbeatBody(id)));
    await waitFor(async () => (await status(id)) === 'ready');

    const revoked = await selector.api(`/v1/nodes/${id}/revoke`, { method: 'POST' });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({ node_id: id, token_generation: 1, known: true });
    expect((await socket.closed).code).toBe(4401);
    expect(await status(id)).toBe('offline');
    expect((await TestSocket.refused(gw.ws, token)).status).toBe(401);
    expect((await http(`/v1/nodes/${id}/heartbeat`, token, heartbeatBody(id))).status).toBe(401);
    const join = await register(gw.ws, JOIN_TOKEN, id);
    expect(await join.nextOfType('error')).toMatchObject({ code: 'UNAUTHORIZED' });
    await join.closed;

    expect((await selector.api(`/v1/nodes/${id}/reset`, { method: 'POST' })).status).toBe(200);
    const back = await register(gw.ws, JOIN_TOKEN, id);
    const ack = await back.nextOfType('node_register_ack');
    expect(verifyNodeToken([NODE_TOKEN_SECRET], ack['node_token'] as string)).toMatchObject({
      generation: 2,
    });
    await back.close();
  });

  it('the admin routes need an admin key', async () => {
    const id = nextId();
    const asClient = await fetch(`${selector.url}/v1/nodes/${id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(asClient.status).toBe(403);
    expect(await redis.hget(gw.keys.forNode(id).tokens, id)).toBeNull();
    expect(ADMIN_API_KEY).not.toBe(API_KEY);
  });

  it('rotation: every listed join token and node-token secret is accepted; the first secret signs', async () => {
    const rotated = await startTestGateway(
      prefix,
      { redisUrl: redisUrl() },
      {
        SB_JOIN_TOKEN: '',
        SB_JOIN_TOKENS: 'join-token-new-0001,join-token-old-0001',
        SB_NODE_TOKEN_SECRET: '',
        SB_NODE_TOKEN_SECRETS: `a-brand-new-node-token-secret,${NODE_TOKEN_SECRET}`,
      },
    );
    try {
      const id = nextId();
      const oldToken = await register(rotated.ws, nodeToken(id), id);
      await oldToken.nextOfType('node_register_ack');
      await oldToken.close();
      const viaOldJoin = await register(rotated.ws, 'join-token-old-0001', null);
      const ack = await viaOldJoin.nextOfType('node_register_ack');
      const claims = verifyNodeToken(['a-brand-new-node-token-secret'], ack['node_token'] as string);
      expect(claims).toMatchObject({ nodeId: ack['node_id'] });
      await viaOldJoin.close();
      expect((await TestSocket.refused(rotated.ws, JOIN_TOKEN)).status).toBe(401);
      const foreign = issueNodeToken('some-other-secret-value', { nodeId: id, generation: 0, expiresAt: 0 });
      expect((await TestSocket.refused(rotated.ws, foreign)).status).toBe(401);
    } finally {
      await rotated.close();
    }
  });
});

describe('join-token policy refuse, and the agent renewing its token', () => {
  const prefix = uniquePrefix();
  let gw: TestGateway;
  let selector: TestSelector;

  beforeAll(async () => {
    gw = await startTestGateway(
      prefix,
      { redisUrl: redisUrl() },
      { SB_JOIN_REREGISTER: 'refuse', SB_NODE_TOKEN_TTL_MS: '1500' },
    );
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() });
  });
  afterAll(async () => {
    await selector.close();
    await gw.close();
  });

  it('refuse: the join token registers new ids only, a known one after an operator reset (once)', async () => {
    const id = 'refuse-node-1';
    const first = await TestSocket.open(gw.ws, JOIN_TOKEN);
    first.send(frame('node_register', registerBody({ node_id: id })));
    await first.nextOfType('node_register_ack');
    await first.close();
    const tryJoin = async () => {
      const s = await TestSocket.open(gw.ws, JOIN_TOKEN);
      s.send(frame('node_register', registerBody({ node_id: id })));
      const answer = await s.next((f) => f.type === 'node_register_ack' || f.type === 'error');
      await s.close();
      return answer.type;
    };
    expect(await tryJoin()).toBe('error'); // offline, and still refused
    expect((await selector.api(`/v1/nodes/${id}/reset`, { method: 'POST' })).status).toBe(200);
    expect(await tryJoin()).toBe('node_register_ack');
    expect(await tryJoin()).toBe('error');
  });

  it('refuse: a lingua node with a node token issued out of band (npm run node-token) in ?token= registers, again and again', async () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'scripts/node-token.ts', 'lingua-7', '--ttl-ms', '0'],
      {
        env: {
          ...process.env,
          REDIS_URL: redisUrl(),
          SB_PREFIX: prefix,
          SB_JOIN_TOKEN: JOIN_TOKEN,
          SB_NODE_TOKEN_SECRET: NODE_TOKEN_SECRET,
        },
        encoding: 'utf8',
      },
    );
    expect(run.stderr).toContain('never expires');
    const token = run.stdout.trim();
    expect(verifyNodeToken([NODE_TOKEN_SECRET], token)).toEqual({
      nodeId: 'lingua-7',
      generation: 0,
      expiresAt: 0,
    });
    for (let i = 0; i < 2; i++) {
      const s = await TestSocket.open(`${gw.ws}?token=${encodeURIComponent(token)}`);
      s.send(frame('node_register', registerBody({ node_id: null })));
      expect(await s.nextOfType('node_register_ack')).toMatchObject({ node_id: 'lingua-7' });
      await s.close();
    }
    await selector.api('/v1/nodes/lingua-7/revoke', { method: 'POST' });
    expect((await TestSocket.refused(`${gw.ws}?token=${encodeURIComponent(token)}`)).status).toBe(401);
    const redis = inspectClient(gw.config);
    try {
      const fresh = await issueOutOfBand(gw.config, redis, 'lingua-7', 60_000);
      expect(verifyNodeToken([NODE_TOKEN_SECRET], fresh.token)).toMatchObject({ generation: 1 });
    } finally {
      await redis.quit();
    }
  });

  it('the agent re-registers before its node token expires, and so keeps a valid one', async () => {
    const agent = new NodeAgent({
      gatewayUrls: [gw.ws],
      token: JOIN_TOKEN,
      registration: registerBody({ node_id: undefined }) as RegistrationBody,
      heartbeat: () => ({ resource_usage: { cpu_percent: 1, mem_percent: 1 } }),
      backoff: { baseMs: 20, maxMs: 200 },
    });
    const acks: { again: boolean }[] = [];
    agent.on('registered', (info: { again: boolean }) => acks.push(info));
    agent.start();
    try {
      await waitFor(() => acks.length >= 3, { timeoutMs: 8000 });
      expect(acks.slice(1).every((a) => a.again)).toBe(true);
    } finally {
      await agent.stop(0);
    }
  });
});
