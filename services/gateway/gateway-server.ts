import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { SwitchboardError, toSwitchboardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { refuseUpgrade, type ServiceHttp } from '../../shared/service-http.ts';
import type { AssignmentFeed } from './assignment-feed.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import { createHttpHandler } from './http-api.ts';
import { InflightLimiter } from './load-shedding.ts';
import { tokenFrom, type NodeAuthenticator, type Principal } from './node-auth.ts';
import type { NodeService } from './node-service.ts';
import { NodeSocket } from './node-socket.ts';
import type { SocketLimits } from './socket-limits.ts';

export interface GatewayServerDeps {
  service: NodeService;
  feed: AssignmentFeed;
  auth: NodeAuthenticator;
  metrics: GatewayMetrics;
  limits: SocketLimits & { maxInflight: number; pingIntervalMs: number };
  log: Logger;
}

/**
 * The gateway's HTTP API and the node WebSocket endpoint `/ws/node`, served on the service's
 * ServiceHttp (which already answers /healthz, /readyz and /metrics).
 */
export class GatewayServer {
  readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<NodeSocket>();
  private closingFlag = false;
  private readonly pinger: NodeJS.Timeout | undefined;

  constructor(
    serviceHttp: ServiceHttp,
    private readonly deps: GatewayServerDeps,
  ) {
    this.http = serviceHttp.server;
    const inflight = new InflightLimiter(deps.limits.maxInflight);
    // Frames up to twice the limit are read and answered with an error frame before the
    // close; beyond that ws closes with 1009 without buffering them.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: deps.limits.maxMessageBytes * 2 });
    serviceHttp.serve(
      createHttpHandler({
        ...deps,
        inflight,
        maxMessageBytes: deps.limits.maxMessageBytes,
        isClosing: () => this.closingFlag,
      }),
      (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head, inflight),
    );
    if (deps.limits.pingIntervalMs > 0) {
      this.pinger = setInterval(() => {
        for (const node of this.sockets) node.ping();
      }, deps.limits.pingIntervalMs);
      this.pinger.unref();
    }
  }

  /** True once close() began: /readyz answers 503 and new work is refused. */
  get closing(): boolean {
    return this.closingFlag;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, inflight: InflightLimiter): void {
    void this.authenticateUpgrade(req).then(
      (principal) => this.accept(req, socket, head, inflight, principal),
      (err: unknown) => refuseUpgrade(socket, toSwitchboardError(err)),
    );
  }

  private async authenticateUpgrade(req: IncomingMessage): Promise<Principal> {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/ws/node') throw new SwitchboardError('NOT_FOUND', `no WebSocket endpoint at ${path}`);
    if (this.closingFlag) throw new SwitchboardError('SHUTTING_DOWN');
    return this.deps.auth.authenticate(tokenFrom(req.headers.authorization, req.url));
  }

  private accept(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    inflight: InflightLimiter,
    principal: Principal,
  ): void {
    if (socket.destroyed) return;
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
        req.socket.remoteAddress ?? '',
      );
      this.sockets.add(node);
      this.deps.metrics.wsConnections.inc();
      void node.closed.then(() => {
        this.sockets.delete(node);
        this.deps.metrics.wsConnections.dec();
      });
    });
  }

  /** Stops accepting, closes node sockets with 1001, waits for in-flight requests, then the server. */
  async close(): Promise<void> {
    this.closingFlag = true;
    clearInterval(this.pinger);
    const sockets = [...this.sockets];
    for (const node of sockets) node.closeForShutdown();
    const serverClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    await Promise.all(sockets.map((node) => node.closed));
    this.wss.close();
    await serverClosed;
  }
}
