import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * The operational endpoints of a service without an API of its own (the worker):
 * GET /healthz (alive), GET /readyz (dependencies reachable), GET /metrics (Prometheus).
 */
export async function startOpsServer(opts: {
  port: number;
  host: string;
  registry: Registry;
  isReady: () => Promise<boolean>;
}): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET')
      return send(405, 'application/json', '{"error":{"code":"NOT_FOUND","message":"GET only"}}');
    if (path === '/healthz') return send(200, 'application/json', '{"ok":true}');
    if (path === '/readyz') {
      void opts
        .isReady()
        .then((ready) => send(ready ? 200 : 503, 'application/json', JSON.stringify({ ready })));
      return;
    }
    if (path === '/metrics') {
      void opts.registry.metrics().then((text) => send(200, opts.registry.contentType, text));
      return;
    }
    send(404, 'application/json', `{"error":{"code":"NOT_FOUND","message":"no route GET ${path}"}}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  return {
    server,
    port: typeof address === 'object' && address ? address.port : opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
