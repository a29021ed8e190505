import { afterEach, describe, expect, it } from 'vitest';
import { BUILD_INFO } from '../../shared/build-info.ts';
import { sendJson } from '../../shared/http-body.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { ServiceHttp } from '../../shared/service-http.ts';
import { TestSocket } from '../support/ws-client.ts';

/** The HTTP side every service has from its first moment, before Redis is reached. */
describe('ServiceHttp', () => {
  let http: ServiceHttp | undefined;
  afterEach(async () => {
    await http?.close();
  });

  async function start(ready: () => boolean) {
    http = await ServiceHttp.listen(0, '127.0.0.1', {
      service: 'selector',
      registry: createMetricsRegistry('selector'),
      isReady: () => Promise.resolve(ready()),
    });
    return { http, base: `http://127.0.0.1:${http.port}` };
  }

  it('while starting: alive, not ready, metrics; everything else 503 SCHEDULER_DEPENDENCY_DOWN', async () => {
    const { base, http: server } = await start(() => false);
    expect(server.port).toBeGreaterThan(0);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({
      ok: true,
      status: 'ok',
      service: 'selector',
      version: BUILD_INFO.version,
      node: BUILD_INFO.node,
      pid: process.pid,
    });
    expect((await fetch(`${base}/healthz`, { method: 'HEAD' })).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false });
    expect(await (await fetch(`${base}/metrics?x=1`)).text()).toMatch(/^sb_build_info\{/m);
    for (const request of [
      fetch(`${base}/v1/jobs`, { method: 'POST', body: '{}' }),
      fetch(`${base}/anything`),
      fetch(`${base}/healthz`, { method: 'POST' }),
    ]) {
      const res = await request;
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ error: { code: 'SCHEDULER_DEPENDENCY_DOWN' } });
    }
    const upgrade = await TestSocket.refused(`ws://127.0.0.1:${server.port}/ws/node`);
    expect(upgrade.status).toBe(503);
    expect(JSON.parse(upgrade.body)).toMatchObject({ error: { code: 'SCHEDULER_DEPENDENCY_DOWN' } });
  });

  it('once serving: the service gets every other request on the same port; ops stay answered', async () => {
    let ready = false;
    const { base, http: server } = await start(() => ready);
    // a keep-alive connection opened while starting is served by the service afterwards too
    expect((await fetch(`${base}/v1/x`)).status).toBe(503);
    server.serve((req, res) => sendJson(res, 200, { served: `${req.method} ${req.url}` }));
    ready = true;
    expect(await (await fetch(`${base}/v1/x?y=1`)).json()).toEqual({ served: 'GET /v1/x?y=1' });
    expect(await (await fetch(`${base}/healthz`, { method: 'POST' })).json()).toEqual({
      served: 'POST /healthz',
    });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // no WebSocket endpoint was given: upgrades are 404 now, not 503
    expect((await TestSocket.refused(`ws://127.0.0.1:${server.port}/ws/node`)).status).toBe(404);
  });
});
