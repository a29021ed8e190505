import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { issueNodeToken, verifyNodeToken } from '../../shared/node-token.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import {
  inspectClient,
  JOIN_TOKEN,
  NODE_TOKEN_SECRET,
  nodeToken,
  startTestGateway,
  type TestGateway,
} from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { TestSocket } from '../support/ws-client.ts';

describe('gateway over WebSocket', () => {
  let gw: TestGateway;
  let redis: Redis | Cluster;
  let seq = 0;
  const nextId = () => `ws-node-${++seq}`;
  const nodeHash = (id: string) => gw.keys.forNode(id).node(id);
  /** The node's languages blob: by its digest, in the shard's caps hash. */
  const langBlob = async (id: string) =>
    redis.hget(gw.keys.forNode(id).caps, (await redis.hget(nodeHash(id), 'dg_lang')) ?? '');

  beforeAll(async () => {
    gw = await startTestGateway(
      uniquePrefix(),
      { redisUrl: redisUrl() },
      { SB_WS_RATE_LIMIT: '20', SB_MAX_MESSAGE_BYTES: '4096' },
    );
    redis = inspectClient(gw.config);
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  async function registered(id: string, token = JOIN_TOKEN): Promise<TestSocket> {
    const socket = await TestSocket.open(gw.ws, token);
    socket.send(frame('node_register', registerBody({ node_id: id })));
    await socket.nextOfType('node_register_ack');
    return socket;
  }

  it('registers, acks with a node token, and a healthy heartbeat makes the node ready', async () => {
    const id = nextId();
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_register', registerBody({ node_id: id })));
    const ack = await socket.nextOfType('node_register_ack');
    expect(ack).toMatchObject({
      node_id: id,
      message: 'registered',
      status: 'registering',
      heartbeat_interval_ms: 15000,
      node_ttl_ms: 45000,
    });
    expect(verifyNodeToken([NODE_TOKEN_SECRET], ack['node_token'] as string)).toMatchObject({
      nodeId: id,
      generation: 0,
    });
    expect(await redis.hget(nodeHash(id), 'status')).toBe('registering');

    socket.send(frame('node_heartbeat', heartbeatBody(id)));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'status')) === 'ready');
    expect(await redis.hmget(nodeHash(id), 'cpu', 'gpu_pct', 'mem', 'running')).toEqual([
      '20',
      '30',
      '50',
      '0',
    ]);
    await socket.close();
  });

  it('generates node-<8 hex> when node_id is absent', async () => {
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_register', registerBody({ node_id: undefined })));
    const ack = await socket.nextOfType('node_register_ack');
    expect(ack['node_id']).toMatch(/^node-[0-9a-f]{8}$/);
    await socket.close();
  });

  it('refuses the upgrade with 401 and a JSON error without a token or with a wrong one', async () => {
    for (const token of [
      undefined,
      'wrong-token',
      issueNodeToken('another-secret-entirely', { nodeId: 'x', generation: 0, expiresAt: 0 }),
    ]) {
      const { status, body } = await TestSocket.refused(gw.ws, token);
      expect(status).toBe(401);
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }
  });

  it('accepts ?token= as well as the Authorization header', async () => {
    const socket = await TestSocket.open(`${gw.ws}?token=${JOIN_TOKEN}`);
    socket.send(frame('node_register', registerBody({ node_id: nextId() })));
    await socket.nextOfType('node_register_ack');
    await socket.close();
  });

  it("node A's token can neither register nor heartbeat as node B", async () => {
    const a = nextId();
    const b = nextId();
    const socket = await TestSocket.open(gw.ws, nodeToken(a));
    socket.send(frame('node_register', registerBody({ node_id: b })));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await redis.exists(nodeHash(b))).toBe(0);

    socket.send(frame('node_register', registerBody({ node_id: a })));
    await socket.nextOfType('node_register_ack');
    socket.send(frame('node_heartbeat', heartbeatBody(b)));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'NODE_ID_MISMATCH' });
    await socket.close();
  });

  it('a node token may re-register its own node, also without a node_id', async () => {
    const id = nextId();
    const socket = await TestSocket.open(gw.ws, nodeToken(id));
    socket.send(frame('node_register', registerBody({ node_id: undefined })));
    expect(await socket.nextOfType('node_register_ack')).toMatchObject({ node_id: id });
    await socket.close();
  });

  it('ignores a heartbeat before any node_register (reconnect order); job frames and heartbeats after a refused one get NOT_REGISTERED', async () => {
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(frame('node_heartbeat', heartbeatBody('nobody')));
    socket.send(frame('job_ack', { job_id: 'j', attempt_id: 1, node_id: 'nobody' }));
    // the first error answers the job_ack: the heartbeat got none
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'NOT_REGISTERED', message: /^job_ack/ });
    socket.send(frame('node_register', registerBody({ node_id: 'nobody', hardware: { cpu_cores: -1 } })));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'INVALID_MESSAGE' });
    socket.send(frame('node_heartbeat', heartbeatBody('nobody')));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'NOT_REGISTERED' });
    await socket.close();
  });

  it('answers a heartbeat for a node whose record is gone with NOT_REGISTERED (re-register)', async () => {
    const id = nextId();
    const socket = await registered(id);
    await redis.del(nodeHash(id));
    socket.send(frame('node_heartbeat', heartbeatBody(id)));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'NOT_REGISTERED' });
    await socket.close();
  });

  it('malformed frames get INVALID_MESSAGE naming the field, change nothing, and keep the socket open', async () => {
    const id = nextId();
    const socket = await registered(id);
    const before = await redis.hgetall(nodeHash(id));
    const cases: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['[1,2]', /JSON object/],
      [JSON.stringify({ type: 'bogus' }), /^type: /],
      [JSON.stringify({ node_id: id }), /^type: /],
      [frame('node_heartbeat', heartbeatBody(id, {}, { cpu_percent: 101 })), /resource_usage\.cpu_percent/],
      [frame('node_heartbeat', heartbeatBody(id, { timestamp: 'soon' })), /^timestamp: /],
      [
        frame('node_heartbeat', heartbeatBody(id, { capability_by_type: [{ type: 'GPU!', ready: true }] })),
        /capability_by_type\.0\.type/,
      ],
      [frame('node_register', registerBody({ node_id: id, platform: 42 })), /^platform: /],
      [frame('node_register', registerBody({ node_id: 'bad id!' })), /^node_id: /],
      [
        frame('node_register', registerBody({ node_id: id, hardware: { cpu_cores: 1 } })),
        /hardware\.memory_gb/,
      ],
    ];
    for (const [text, message] of cases) {
      socket.send(text);
      const error = await socket.nextOfType('error');
      expect(error['code'], text).toBe('INVALID_MESSAGE');
      expect(error['message'], text).toMatch(message);
    }
    expect(await redis.hgetall(nodeHash(id))).toEqual(before);
    socket.send(frame('node_heartbeat', heartbeatBody(id)));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'status')) === 'ready');
    await socket.close();
  });

  it('rejects an unsupported capability_schema_version and a node without GPU (GPU required)', async () => {
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    const id = nextId();
    socket.send(frame('node_register', registerBody({ node_id: id, capability_schema_version: '1.0' })));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'INVALID_CAPABILITY_SCHEMA' });
    socket.send(
      frame(
        'node_register',
        registerBody({ node_id: id, hardware: { cpu_cores: 4, memory_gb: 8, gpus: [] } }),
      ),
    );
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'NO_GPU_AVAILABLE' });
    expect(await redis.exists(nodeHash(id))).toBe(0);
    await socket.close();
  });

  it('accepts unknown extra fields and null optional fields', async () => {
    const id = nextId();
    const socket = await TestSocket.open(gw.ws, JOIN_TOKEN);
    socket.send(
      frame(
        'node_register',
        registerBody({
          node_id: id,
          future_field: { x: 1 },
          language_capabilities: null,
          installed_services: null,
        }),
      ),
    );
    await socket.nextOfType('node_register_ack');
    socket.send(
      frame(
        'node_heartbeat',
        heartbeatBody(id, { something_new: true, installed_models: null }, { gpu_percent: null }),
      ),
    );
    await waitFor(async () => (await redis.hget(nodeHash(id), 'status')) === 'ready');
    expect(await redis.hget(nodeHash(id), 'gpu_pct')).toBe('');
    await socket.close();
  });

  it('an oversized frame gets an error and the socket is closed with 1009', async () => {
    const id = nextId();
    const socket = await registered(id);
    socket.send(frame('node_heartbeat', heartbeatBody(id, { padding: 'x'.repeat(5000) })));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'INVALID_MESSAGE' });
    expect((await socket.closed).code).toBe(1009);
  });

  it('sheds frames beyond the rate limit with RATE_LIMITED and closes a persistent flooder with 4429', async () => {
    const id = nextId();
    const socket = await registered(id);
    const hb = frame('node_heartbeat', heartbeatBody(id));
    for (let i = 0; i < 400; i++) socket.send(hb);
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'RATE_LIMITED' });
    expect((await socket.closed).code).toBe(4429);
  });

  it('handles frames on one socket in order', async () => {
    const id = nextId();
    const socket = await registered(id);
    for (let i = 1; i <= 20; i++)
      socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 1000 + i }, { cpu_percent: i })));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'hb_ts')) === '1020');
    expect(await redis.hget(nodeHash(id), 'cpu')).toBe('20');
    await socket.close();
  });

  it('ignores an older heartbeat without an error', async () => {
    const id = nextId();
    const socket = await registered(id);
    socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 5000 }, { cpu_percent: 50 })));
    socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 4000 }, { cpu_percent: 90 })));
    socket.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 5000 }, { cpu_percent: 55 })));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'cpu')) === '55');
    expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);
    await socket.close();
  });

  it('a close marks the node offline only for its own epoch (reconnect elsewhere first, late close)', async () => {
    const id = nextId();
    const old = await registered(id);
    const other = await startTestGateway(gw.config.prefix, { redisUrl: redisUrl() });
    try {
      const fresh = await TestSocket.open(other.ws, nodeToken(id));
      fresh.send(frame('node_register', registerBody({ node_id: id })));
      await fresh.nextOfType('node_register_ack');
      fresh.send(frame('node_heartbeat', heartbeatBody(id)));
      await waitFor(async () => (await redis.hget(nodeHash(id), 'status')) === 'ready');

      await old.close(); // the late close of the first connection
      // the gateway drops the socket from its gauge only after handling the close
      await waitFor(async () =>
        /^sb_ws_connections\{[^}]*\} 0$/m.test(await (await fetch(`${gw.http}/metrics`)).text()),
      );
      expect(await redis.hget(nodeHash(id), 'status')).toBe('ready');

      await fresh.close(); // the current connection closing does count
      await waitFor(async () => (await redis.hget(nodeHash(id), 'status')) === 'offline');
    } finally {
      await other.close();
    }
  });

  it('resends capability blobs when another replica changed them since (digests-only heartbeat refused)', async () => {
    const id = nextId();
    const a = await registered(id);
    const lang = (regLangs: string[]) => ({ asr_languages: regLangs, tts_languages: ['en'] });
    a.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 1, language_capabilities: lang(['en']) })));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'hb_ts')) === '1');

    const other = await startTestGateway(gw.config.prefix, { redisUrl: redisUrl() });
    try {
      const b = await TestSocket.open(other.ws, nodeToken(id));
      b.send(frame('node_register', registerBody({ node_id: id })));
      await b.nextOfType('node_register_ack');
      b.send(
        frame('node_heartbeat', heartbeatBody(id, { timestamp: 2, language_capabilities: lang(['de']) })),
      );
      await waitFor(async () => (await redis.hget(nodeHash(id), 'hb_ts')) === '2');
      expect(await langBlob(id)).toContain('"de"');
      await b.close();
    } finally {
      await other.close();
    }
    // replica A has ['en'] cached and first sends digests only; Redis holds ['de']
    a.send(frame('node_heartbeat', heartbeatBody(id, { timestamp: 3, language_capabilities: lang(['en']) })));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'hb_ts')) === '3');
    expect(await langBlob(id)).toContain('"en"');
    expect(a.frames.filter((f) => f.type === 'error')).toEqual([]);
    await a.close();
  });

  it('records node_error on the node', async () => {
    const id = nextId();
    const socket = await registered(id);
    socket.send(frame('node_error', { node_id: id, code: 'CUDA_OOM', message: 'out of memory' }));
    await waitFor(async () => (await redis.hget(nodeHash(id), 'last_error')) !== null);
    expect(JSON.parse((await redis.hget(nodeHash(id), 'last_error'))!)).toMatchObject({ code: 'CUDA_OOM' });
    await socket.close();
  });
});
