import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import { startGateway, type Gateway } from '../../services/gateway/main.ts';
import { startSelector, type SelectorService } from '../../services/selector/main.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { captureLogger, errorLines } from '../support/log-capture.ts';
import { frame, heartbeatBody, registerBody } from '../support/node-fixtures.ts';
import { rawRequest } from '../support/raw-http.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { API_KEY, inspectClient, JOIN_TOKEN, testConfig } from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Regression tests of issue 11's hostile requests: malformed percent-escapes in route
 * parameters (defect 1) and deeply nested JSON (defect 5). Each answered 4xx naming the
 * problem; the processes survive and log no error.
 */
describe('hostile input: route parameters and nesting', () => {
  const prefix = uniquePrefix('hostile');
  const gatewayLog = captureLogger();
  const selectorLog = captureLogger();
  let gateway: Gateway;
  let selector: SelectorService;
  let gw: string;
  let sel: string;
  let redis: Redis | Cluster;
  const keys = () => new KeyBuilder(prefix, 16);

  beforeAll(async () => {
    const config = testConfig(prefix, { redisUrl: redisUrl() });
    gateway = await startGateway(config, gatewayLog.log);
    selector = await startSelector(config, selectorLog.log);
    gw = `http://127.0.0.1:${gateway.port}`;
    sel = `http://127.0.0.1:${selector.port}`;
    redis = inspectClient(config);
  });
  afterAll(async () => {
    await gateway.close();
    await selector.close();
    await redis.quit();
  });

  const register = async (id: string) =>
    (
      await fetch(`${gw}/v1/nodes/register`, {
        method: 'POST',
        headers: { authorization: `Bearer ${JOIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(registerBody({ node_id: id })),
      })
    ).status;

  it.each(['%E0%A4%A', '%', '%zz', '%C0%80', 'ok%'])(
    'the heartbeat fast path answers 400 naming node_id for %s and keeps serving',
    async (bad) => {
      const res = await rawRequest(gw, 'POST', `/v1/nodes/${bad}/heartbeat`, {
        token: JOIN_TOKEN,
        body: JSON.stringify(heartbeatBody('x')),
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 'INVALID_MESSAGE' } });
      expect((res.body['error'] as { message: string }).message).toMatch(
        /^node_id: malformed percent-encoding/,
      );
      expect((await fetch(`${gw}/healthz`)).status).toBe(200);
    },
  );

  it('gateway job routes answer 400 naming the parameter', async () => {
    for (const [path, name] of [
      ['/v1/nodes/%zz/jobs/j-1/ack', 'node_id'],
      ['/v1/nodes/n-1/jobs/%E0%A4%A/result', 'job_id'],
      ['/v1/nodes/n-1/jobs/j-1/%C0%80', 'step'],
    ] as const) {
      const res = await rawRequest(gw, 'POST', path, { token: JOIN_TOKEN });
      expect(res.status, path).toBe(400);
      expect((res.body['error'] as { message: string }).message).toMatch(new RegExp(`^${name}: malformed`));
    }
    expect(errorLines(gatewayLog.lines)).toEqual([]);
  });

  it('selector routes answer 400 naming the parameter, never 500', async () => {
    for (const [method, path] of [
      ['GET', '/v1/jobs/%zz'],
      ['GET', '/v1/nodes/%E0%A4%A'],
      ['POST', '/v1/nodes/%C0%80/drain'],
      ['DELETE', '/v1/nodes/%/drain'],
    ] as const) {
      const res = await rawRequest(sel, method, path, { token: API_KEY });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 'INVALID_MESSAGE' } });
      expect((res.body['error'] as { message: string }).message).toMatch(/^id: malformed percent-encoding/);
    }
    expect(errorLines(selectorLog.lines)).toEqual([]);
  });

  it('a refused registration is logged with its node_id cut short and counted per field, not per list index', async () => {
    const socket = await TestSocket.open(`ws://127.0.0.1:${gateway.port}/ws/node`, JOIN_TOKEN);
    const models = Array.from({ length: 9 }, (_, i) => ({ model_id: `m${i}`, kind: 'asr', version: '1' }));
    models[7] = { ...models[7]!, version: 7 as unknown as string };
    socket.send(
      frame('node_register', registerBody({ node_id: 'n'.repeat(5000), installed_models: models })),
    );
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'INVALID_MESSAGE' });
    socket.send(
      frame('node_register', registerBody({ node_id: 'hostile-models', installed_models: models })),
    );
    expect(await socket.nextOfType('error')).toMatchObject({ message: /^installed_models\.7\.version: / });
    await socket.close();
    const [first, second] = gatewayLog.lines.filter((l) => l['msg'] === 'node_register refused').slice(-2);
    expect(String(first!['nodeId']).length).toBeLessThan(80);
    expect(first!['field']).toBe('node_id');
    expect(second!['field']).toBe('installed_models.*.version');
    const metrics = await (await fetch(`${gw}/metrics`)).text();
    expect(metrics).toContain('field="installed_models.*.version"');
    expect(metrics).not.toMatch(/field="[^"]*\.\d+[."]/);
  });

  const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

  it('deep JSON over HTTP is 400 naming the nesting, changes nothing and logs no error', async () => {
    const id = 'hostile-deep-http';
    expect(await register(id)).toBe(201);
    const before = await redis.hgetall(keys().forNode(id).node(id));
    const body = JSON.stringify(heartbeatBody(id)).replace(
      '"resource_usage"',
      `"x":${deep(5000)},"resource_usage"`,
    );
    const res = await rawRequest(gw, 'POST', `/v1/nodes/${id}/heartbeat`, { token: JOIN_TOKEN, body });
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'INVALID_MESSAGE' } } });
    expect((res.body['error'] as { message: string }).message).toBe(
      'body: JSON nested deeper than 64 levels',
    );
    const result = await rawRequest(gw, 'POST', `/v1/nodes/${id}/jobs/j-1/result`, {
      token: JOIN_TOKEN,
      body: `{"job_id":"j-1","attempt_id":1,"success":true,"output":${deep(5000)}}`,
    });
    expect(result.status).toBe(400);
    const job = await rawRequest(sel, 'POST', '/v1/jobs', {
      token: API_KEY,
      body: `{"job_id":"deep-1","payload":${deep(5000)}}`,
    });
    expect(job).toMatchObject({ status: 400, body: { error: { code: 'INVALID_MESSAGE' } } });
    expect(await redis.hgetall(keys().forNode(id).node(id))).toEqual(before);
    expect(errorLines(gatewayLog.lines)).toEqual([]);
    expect(errorLines(selectorLog.lines)).toEqual([]);
  });

  it('deep JSON over WebSocket gets an INVALID_MESSAGE error frame, even in `type`', async () => {
    const socket = await TestSocket.open(`ws://127.0.0.1:${gateway.port}/ws/node`, JOIN_TOKEN);
    socket.send(frame('node_register', registerBody({ node_id: 'hostile-deep-ws' })));
    await socket.nextOfType('node_register_ack');
    socket.send(`{"type":${deep(5000)}}`);
    expect(await socket.nextOfType('error')).toMatchObject({
      code: 'INVALID_MESSAGE',
      message: 'frame: JSON nested deeper than 64 levels',
    });
    socket.send(`{"type":${deep(60)}}`);
    expect(await socket.nextOfType('error')).toMatchObject({
      code: 'INVALID_MESSAGE',
      message: expect.stringMatching(/^type: expected one of .*, got an array$/) as unknown,
    });
    socket.send(
      frame('node_error', {
        node_id: 'hostile-deep-ws',
        code: 'E',
        message: 'm',
        details: JSON.parse(deep(62)) as unknown,
      }),
    );
    socket.send(frame('node_heartbeat', heartbeatBody('hostile-deep-ws')));
    await new Promise((r) => setTimeout(r, 200));
    expect(socket.frames.filter((f) => f.type === 'error')).toEqual([]);
    await socket.close();
    expect(errorLines(gatewayLog.lines)).toEqual([]);
  });
});
