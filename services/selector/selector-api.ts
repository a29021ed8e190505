import type express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { createServiceApp, finishServiceApp } from '../../shared/express-app.ts';
import type { AuthConfig } from '../../shared/config.ts';
import { SwitchboardError, toSwitchboardError } from '../../shared/errors.ts';
import { readJsonBody, sendError } from '../../shared/http-body.ts';
import type { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import { guardRouteParams, routeParam } from '../../shared/route-params.ts';
import {
  NODE_PAGE,
  nodeListQuerySchema,
  type NodeList,
  type NoAvailableNode,
} from '../../shared/protocol/client-messages.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import { isTerminalEvent, type JobEvents } from '../../shared/store/job-events.ts';
import { NodeAdminStore } from '../../shared/store/node-history.ts';
import { adminOnly, apiKeyAuth, callerOf, readableTenant } from './api-keys.ts';
import { mountConsoleApi } from './console-api.ts';
import { defaultConsoleDir, mountConsole } from './console-routes.ts';
import { sessionAuth } from './console-session.ts';
import { mountCredentialRoutes } from './credential-routes.ts';
import { streamJobEvents } from './job-events.ts';
import { NoAvailableNodeError, type JobPlacer } from './job-placer.ts';
import { nodePage } from './node-pages.ts';
import type { JobReadStore } from '../../shared/store/job-reads.ts';
import type { SelectorMetrics } from './selector-metrics.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

export interface SelectorApiDeps {
  auth: AuthConfig;
  placer: JobPlacer;
  jobs: JobReadStore;
  /** Wakes requests waiting for a job when its shard announces a change. */
  events: JobEvents;
  index: SnapshotIndex;
  redis: RedisClient;
  keys: KeyBuilder;
  queues: DerivedWorkQueues;
  snapshot: () => Record<string, unknown>;
  isClosing: () => boolean;
  metrics: SelectorMetrics;
  maxMessageBytes: number;
  /** SB_INBOX_LEN: cap of the assignment feed a revocation writes to. */
  feedCap: number;
  log: Logger;
  /** SB_CONSOLE_SESSION_TTL_MS */
  consoleSessionTtlMs: number;
  /** SB_CONSOLE_LOGIN_RATE */
  consoleLoginRate: number;
  /** SB_CONSOLE_DIR (null: dist/console beside the code) */
  consoleDir: string | null;
  /** SB_JAEGER_URL */
  jaegerUrl: string | null;
  /** a connection for the queues bull-board shows */
  queueRedis: RedisClient;
  /** The job sweep's index: a placed job enters it (the safety net for a slot Redis lost). */
}

const TERMINAL = new Set(['finished', 'failed']);

/** The client and admin HTTP API of a selector (PROTOCOL.md "Client HTTP"). */
export function createSelectorApi(deps: SelectorApiDeps): { app: express.Express; close(): Promise<void> } {
  const app = createServiceApp();
  const nodes = new NodeAdminStore(deps.redis, deps.keys, deps.feedCap);
  const consoleRoutes = mountConsole(app, {
    auth: deps.auth,
    sessionTtlMs: deps.consoleSessionTtlMs,
    loginRate: deps.consoleLoginRate,
    consoleDir: deps.consoleDir ?? defaultConsoleDir(),
    queues: deps.queues,
    queueRedis: deps.queueRedis,
    keys: deps.keys,
    maxMessageBytes: deps.maxMessageBytes,
    log: deps.log,
  });

  app.use('/v1', sessionAuth(deps.auth), apiKeyAuth(deps.auth));
  app.use(
    guardRouteParams([
      '/v1/jobs/:id',
      '/v1/jobs/:id/events',
      '/v1/nodes/:id',
      '/v1/nodes/:id/drain',
      '/v1/nodes/:id/revoke',
      '/v1/nodes/:id/reset',
      '/v1/console/jobs/:id',
    ]),
  );
  // clients: POST /v1/jobs, GET /v1/jobs[/:id]; a client key's console session also reads the
  // rest (GETs, and the read-only POST /v1/explain); everything else is for admin keys
  app.use('/v1', (req: Request, res: Response, next: NextFunction) => {
    if (req.path === '/jobs' || req.path.startsWith('/jobs/')) return next();
    const viewer = callerOf(res)?.session === true && (req.method === 'GET' || req.path === '/explain');
    return viewer ? next() : adminOnly(req, res, next);
  });
  const consoleApi = mountConsoleApi(app, {
    placer: deps.placer,
    jobs: deps.jobs,
    index: deps.index,
    redis: deps.redis,
    keys: deps.keys,
    metrics: deps.metrics,
    snapshot: deps.snapshot,
    maxMessageBytes: deps.maxMessageBytes,
    jaegerUrl: deps.jaegerUrl,
  });

  app.post('/v1/jobs', async (req: Request, res: Response) => {
    const started = performance.now();
    let outcome = 'error';
    try {
      if (deps.isClosing()) throw new SwitchboardError('SHUTTING_DOWN');
      const body = await readJsonBody(req, deps.maxMessageBytes, deps.log);
      const placed = await deps.placer.place(body, firstHeader(req.headers['traceparent']), callerOf(res));
      outcome = placed.body['dry_run'] ? 'dry_run' : placed.status === 201 ? 'placed' : 'repeated';
      res.status(placed.status).json(placed.body);
    } catch (err) {
      if (err instanceof NoAvailableNodeError) {
        outcome = 'no_node';
        res.setHeader('retry-after', '1');
        const answer = {
          error: { code: 'NO_AVAILABLE_NODE' as const, message: err.message },
          breakdown: err.breakdown,
          ...(err.reservationConflicts ? { reservation_conflicts: err.reservationConflicts } : {}),
        } satisfies NoAvailableNode;
        res.status(503).json(answer);
        return;
      }
      const error = toSwitchboardError(err);
      if (error.status === 400) outcome = 'invalid';
      if (error.code === 'INTERNAL') deps.log.error({ err }, 'POST /v1/jobs failed');
      sendError(res, error);
    } finally {
      deps.metrics.jobs.inc({ outcome });
      deps.metrics.requestSeconds.observe((performance.now() - started) / 1000);
    }
  });

  app.get('/v1/jobs/:id', async (req: Request, res: Response) => {
    const id = routeParam(req, 'id');
    const waitMs = Math.min(Math.max(Number(req.query['wait_ms'] ?? 0) || 0, 0), 60_000);
    const deadline = Date.now() + waitMs;
    // another tenant's job answers as an unknown one
    const tenant = readableTenant(callerOf(res));
    // watching BEFORE the first read: a result announced between the read and the wait is kept
    const watch = waitMs > 0 ? deps.events.watch(id, isTerminalEvent) : null;
    let gone = false;
    res.on('close', () => {
      gone = !res.writableFinished;
      watch?.close();
    });
    try {
      let view = await deps.jobs.view(id, tenant);
      while (watch && view && !TERMINAL.has(view.status) && !deps.isClosing()) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        await watch.next(left); // an announcement, a resubscription, the fallback period or the end
        if (gone) return;
        view = await deps.jobs.view(id, tenant);
      }
      if (!view) throw new SwitchboardError('NOT_FOUND', `no job ${id}`);
      res.json(view);
    } finally {
      watch?.close();
    }
  });

  app.get('/v1/jobs/:id/events', (req: Request, res: Response) =>
    streamJobEvents(req, res, {
      jobs: deps.jobs,
      events: deps.events,
      isClosing: deps.isClosing,
      tenant: readableTenant(callerOf(res)),
    }),
  );

  app.get('/v1/nodes', (req: Request, res: Response) => {
    const query = parseOrThrow(nodeListQuerySchema, req.query);
    const limit = query.limit ?? NODE_PAGE.defaultLimit;
    const { page, more } = nodePage(deps.index.all(), query.cursor, limit);
    const body: NodeList = {
      nodes: page.map((n) => ({ ...n.entry, shard: n.shard })),
      next_cursor: more ? page[page.length - 1]!.entry.id : null,
    };
    res.json(body);
  });

  app.get('/v1/nodes/:id', async (req: Request, res: Response) => {
    const id = routeParam(req, 'id');
    const node = deps.index.get(id);
    const live = await nodes.live(id);
    if (!node && live.status === null) throw new SwitchboardError('NOT_FOUND', `no node ${id}`);
    res.json({ ...(node ? { ...node.entry, shard: node.shard } : { id }), live });
  });

  app.get('/v1/pools', (_req, res) => {
    const pools = [...deps.index.keys('pool')]
      .sort()
      .map((pool) => ({ pool, nodes: deps.index.index('pool', pool).size }));
    res.json({ pools });
  });

  app.get('/v1/snapshot', (_req, res) => {
    res.json(deps.snapshot());
  });

  const drain = (on: boolean) => async (req: Request, res: Response) => {
    const id = routeParam(req, 'id');
    const { dirtyWasEmpty, shard } = await nodes.drain(id, on, callerOf(res)?.tenant);
    if (dirtyWasEmpty) await deps.queues.requestFlush(shard);
    res.json({ node_id: id, draining: on });
  };
  app.post('/v1/nodes/:id/drain', drain(true));
  app.delete('/v1/nodes/:id/drain', drain(false));
  mountCredentialRoutes(app, { nodes, queues: deps.queues });

  return {
    app: finishServiceApp(app, deps.log),
    close: () => {
      consoleApi.close();
      return consoleRoutes.close();
    },
  };
}

function firstHeader(header: string | string[] | undefined): string | null {
  return (Array.isArray(header) ? header[0] : header) ?? null;
}
