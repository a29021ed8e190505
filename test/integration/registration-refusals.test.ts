import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../services/gateway/main.ts';
import { clientFrames } from '../support/lingua-node.ts';
import { captureLogger } from '../support/log-capture.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { JOIN_TOKEN, scrape, testConfig } from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * The lingua client ignores error frames, so a refused node_register must show elsewhere:
 * `sb_registration_refusals_total{code,field}` and a `node_register refused` warning with the
 * node's remote address and the field — over WebSocket and HTTP alike.
 */
describe('refused registrations are visible to operators (gateway)', () => {
  const gatewayLog = captureLogger();
  let gateway: Gateway;
  let http: string;
  let ws: string;

  beforeAll(async () => {
    gateway = await startGateway(
      testConfig(uniquePrefix('refusals'), { redisUrl: redisUrl() }),
      gatewayLog.log,
    );
    http = `http://127.0.0.1:${gateway.port}`;
    ws = `ws://127.0.0.1:${gateway.port}/ws/node`;
  });
  afterAll(async () => {
    await gateway.close();
  });

  const lingua = (change: (reg: Record<string, unknown>) => void) => {
    const reg = JSON.parse(JSON.stringify(clientFrames.profiles.full['node_register'])) as Record<
      string,
      unknown
    >;
    change(reg);
    return reg;
  };
  const refusals = () => gatewayLog.lines.filter((l) => l['msg'] === 'node_register refused');

  it('over WebSocket: counted by code and field, logged with the remote address', async () => {
    const socket = await TestSocket.open(ws, JOIN_TOKEN);
    socket.send(JSON.stringify(lingua((r) => (r['capability_schema_version'] = '3.0'))));
    expect(await socket.nextOfType('error')).toMatchObject({ code: 'INVALID_CAPABILITY_SCHEMA' });
    const labels = { code: 'INVALID_CAPABILITY_SCHEMA', field: 'capability_schema_version' };
    expect(await scrape(`${http}/metrics`, 'sb_registration_refusals_total', labels)).toBe(1);
    await waitFor(() => refusals().length === 1);
    expect(refusals()[0]).toMatchObject({
      remoteAddress: expect.stringMatching(/127\.0\.0\.1$/) as unknown,
      code: 'INVALID_CAPABILITY_SCHEMA',
      field: 'capability_schema_version',
      level: 40,
    });
    // the unmodified registration is accepted and counts nothing
    socket.send(JSON.stringify(lingua(() => undefined)));
    await socket.nextOfType('node_register_ack');
    expect(refusals()).toHaveLength(1);
    await socket.close();
  });

  it('over HTTP: the same metric and log line', async () => {
    const res = await fetch(`${http}/v1/nodes/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${JOIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(lingua((r) => ((r['hardware'] as Record<string, unknown>)['cpu_cores'] = -1))),
    });
    expect(res.status).toBe(400);
    const labels = { code: 'INVALID_MESSAGE', field: 'hardware.cpu_cores' };
    expect(await scrape(`${http}/metrics`, 'sb_registration_refusals_total', labels)).toBe(1);
    expect(refusals().at(-1)).toMatchObject({ code: 'INVALID_MESSAGE', field: 'hardware.cpu_cores' });
    expect(String(refusals().at(-1)!['remoteAddress'])).toMatch(/127\.0\.0\.1$/);
  });
});
