import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { httpErrorBody, SwitchboardError, toSwitchboardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Registry } from '../../shared/metrics.ts';
import type { AssignmentFeed } from './assignment-feed.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import { createHttpHandler } from './http-api.ts';
import { InflightLimiter } from './load-shedding.ts';
import { tokenFrom, type NodeAuthenticator } from './node-auth.ts';
import type { NodeService } from './node-service.ts';
import { NodeSocket, type SocketLimits } from './node-socket.ts';

export interface GatewayServerDeps {
  service: NodeService;
  feed: AssignmentFeed;
  auth: NodeAuthenticator;
  metrics: GatewayMetrics;
  registry: Registry;
  limits: SocketLimits & { maxInflight: number };
  isReady: () => Promise<boolean>;
  log: Logger;
}

/** The gateway's HTTP server and the node WebSocket endpoint `/ws/node` on it. */
export class GatewayServer {
  readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<NodeSocket>();
  private closing = false;

  constructor(private readonly deps: GatewayServerDeps) {
    const inflight = new InflightLimiter(deps.limits.maxInflight);
    this.http = createServer(
      { keepAliveTimeout: 65_000 },
      createHttpHandler({
        ...deps,
        inflight,
        maxMessageBytes: deps.limits.maxMessageBytes,
        isClosing: () => this.closing,
      }),
    );
    // Frames up to twice the limit are read and answered with an error frame before the
    // close; beyond that ws closes with 1009 without buffering them.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: deps.limits.maxMessageBytes * 2 });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgrade(req, socket, head, inflight);
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, inflight: InflightLimiter): void {
    const path = (req.url ?? '').split('?', 1)[0];
    let principal;
    try {
      if (path !== '/ws/node') throw new SwitchboardError('NOT_FOUND', `no WebSocket endpoint at ${path}`);
      if (this.closing) throw new SwitchboardError('SHUTTING_DOWN');
      principal = this.deps.auth.authenticate(tokenFrom(req.headers.authorization, req.url));
    } catch (err) {
      refuseUpgrade(socket, toSwitchboardError(err));
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const node = new NodeSocket(
        ws,
        principal,
        this.deps.service,
        this.deps.feed,
        inflight,
        this.deps.limits,
        this.deps.metrics,
        this.deps.log,
      );
      this.sockets.add(node);
      this.deps.metrics.wsConnections.inc();
      void node.closed.then(() => {
        this.sockets.delete(node);
        this.deps.metrics.wsConnections.dec();
      });
    });
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    const address = this.http.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /** Stops accepting, closes node sockets with 1001, waits for in-flight requests, then the server. */
  async close(): Promise<void> {
    this.closing = true;
    const sockets = [...this.sockets];
    for (const node of sockets) node.closeForShutdown();
    const serverClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    await Promise.all(sockets.map((node) => node.closed));
    this.wss.close();
    await serverClosed;
  }
}

function refuseUpgrade(socket: Duplex, error: SwitchboardError): void {
  const body = JSON.stringify(httpErrorBody(error));
  const reason =
    error.status === 401 ? 'Unauthorized' : error.status === 404 ? 'Not Found' : 'Service Unavailable';
  socket.end(
    `HTTP/1.1 ${error.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
