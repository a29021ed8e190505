import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { healthBody } from './build-info.ts';
import { httpErrorBody, SwitchboardError } from './errors.ts';
import { sendError, sendJson } from './http-body.ts';

export interface OpsDeps {
  /** `gateway`, `worker` or `selector`: named by /healthz. */
  service: string;
  registry: Registry;
  /** Redis reachable, the service started, not closing (and whatever else the service needs). */
  isReady: () => Promise<boolean>;
  /**
   * `/readyz` answers 503 when `isReady` has not answered within this (a stalled Redis must
   * not hold the probe). Default 2000.
   */
  readyTimeoutMs?: number;
  /** Called before each scrape, to refresh gauges. */
  beforeScrape?: () => void;
  /**
   * What /metrics answers, when not `registry.metrics()`: a child of a multi-process service
   * answers every process's metrics, aggregated by the primary (shared/process-cluster.ts).
   */
  metrics?: () => Promise<string>;
  /** Bounds on slow or idle clients (see `httpLimits`); Node's defaults (60/300 s) without. */
  limits?: HttpLimits;
}

export interface HttpLimits {
  /** Headers not complete within this: 408 and the connection closed. */
  headersTimeoutMs: number;
  /** Whole request (headers and body) not received within this: 408 and closed. */
  requestTimeoutMs: number;
  /** Open connections beyond this are dropped at once (undefined: no bound). */
  maxConnections?: number;
}

/** The HTTP limits of the environment: SB_HTTP_HEADERS_TIMEOUT_MS, SB_HTTP_REQUEST_TIMEOUT_MS. */
export function httpLimits(env: {
  SB_HTTP_HEADERS_TIMEOUT_MS: number;
  SB_HTTP_REQUEST_TIMEOUT_MS: number;
}): HttpLimits {
  return {
    headersTimeoutMs: env.SB_HTTP_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: env.SB_HTTP_REQUEST_TIMEOUT_MS,
  };
}

export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * A service's HTTP server. It listens before the service can serve, so that an orchestrator
 * sees the process alive while it waits for Redis: from the start, GET (or HEAD) /healthz
 * answers 200 (alive, with the build), /readyz 200 or 503 (`isReady`) and /metrics; until
 * `serve()`, every other request and every WebSocket upgrade gets 503
 * SCHEDULER_DEPENDENCY_DOWN with `Retry-After`. After `serve()` they go to the service.
 */
/**
 * Connections the kernel queues before the process accepts them (Node's default is 511; Linux
 * caps it at net.core.somaxconn, 4096 on current kernels). A reconnect storm opens thousands of
 * node sockets at once: past the queue the kernel drops their SYNs and each client waits out a
 * retransmission (1 s, then 3 s, ...) or gives up.
 */
export const LISTEN_BACKLOG = 4096;

export class ServiceHttp {
  readonly server: Server;
  private readonly serveOps: (req: IncomingMessage, res: ServerResponse) => boolean;
  private readonly waiting: RequestListener;
  private upgrade: UpgradeListener = refuseWhileStarting;
  private boundPort = 0;

  private constructor(ops: OpsDeps) {
    const serveOps = opsHandler(ops);
    this.serveOps = serveOps;
    this.waiting = (req, res) => {
      if (!serveOps(req, res)) sendError(res, STARTING);
    };
    const limits = ops.limits;
    this.server = createServer(
      limits
        ? {
            keepAliveTimeout: 65_000,
            // a request timeout below the headers one would be refused by node:http
            headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
            requestTimeout: limits.requestTimeoutMs,
            // how often node:http checks those timeouts (default 30 s)
            connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
          }
        : { keepAliveTimeout: 65_000 },
      this.waiting,
    );
    if (limits?.maxConnections !== undefined) this.server.maxConnections = limits.maxConnections;
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgrade(req, socket, head);
    });
  }

  /**
   * Listens on `port` (0: any free port) and answers as described above, with a queue of
   * LISTEN_BACKLOG connections not yet accepted.
   */
  static async listen(port: number, host: string, ops: OpsDeps): Promise<ServiceHttp> {
    const http = new ServiceHttp(ops);
    const server = http.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    http.boundPort = typeof address === 'object' && address ? address.port : port;
    return http;
  }

  /** The port it listens on. */
  get port(): number {
    return this.boundPort;
  }

  /** From now on, requests other than the operational endpoints (and upgrades) go to the service. */
  serve(handler: RequestListener, onUpgrade?: UpgradeListener): void {
    const serveOps = this.serveOps;
    this.server.off('request', this.waiting);
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!serveOps(req, res)) handler(req, res);
    });
    this.upgrade = onUpgrade ?? refuseNotFound;
  }

  /** Stops listening and drops every connection (services with sockets to drain close those first). */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

const STARTING = new SwitchboardError(
  'SCHEDULER_DEPENDENCY_DOWN',
  'starting: waiting for Redis; retry later',
);

/** GET /healthz, /readyz and /metrics; false for any other request. */
function opsHandler(ops: OpsDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false; // node sends no body for HEAD
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (!OPS_PATHS.has(path)) return false;
    if (path === '/healthz') {
      sendJson(res, 200, healthBody(ops.service));
    } else if (path === '/readyz') {
      void boundedReady(ops).then((ready) => sendJson(res, ready ? 200 : 503, { ready }));
    } else {
      ops.beforeScrape?.();
      void (ops.metrics ? ops.metrics() : ops.registry.metrics()).then(
        (text) => {
          res.writeHead(200, { 'content-type': ops.registry.contentType });
          res.end(text);
        },
        (err: unknown) => sendError(res, new SwitchboardError('INTERNAL', `metrics: ${String(err)}`)),
      );
    }
    return true;
  };
}

/** `isReady`, false when it throws or has not answered within `readyTimeoutMs`. */
async function boundedReady(ops: OpsDeps): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ops.readyTimeoutMs || 2000);
  });
  try {
    return await Promise.race([ops.isReady().catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function refuseWhileStarting(_req: IncomingMessage, socket: Duplex): void {
  refuseUpgrade(socket, STARTING);
}

function refuseNotFound(req: IncomingMessage, socket: Duplex): void {
  const path = (req.url ?? '').split('?', 1)[0];
  refuseUpgrade(socket, new SwitchboardError('NOT_FOUND', `no WebSocket endpoint at ${path}`));
}

/** Answers an upgrade request with a plain HTTP error response in the catalog format. */
export function refuseUpgrade(socket: Duplex, error: SwitchboardError): void {
  const body = JSON.stringify(httpErrorBody(error));
  const reason =
    error.status === 401
      ? 'Unauthorized'
      : error.status === 404
        ? 'Not Found'
        : error.status === 403
          ? 'Forbidden'
          : 'Service Unavailable';
  const retry = error.retryAfterS === undefined ? '' : `Retry-After: ${error.retryAfterS}\r\n`;
  socket.end(
    `HTTP/1.1 ${error.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`,
  );
}
