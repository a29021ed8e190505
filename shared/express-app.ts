import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import { SwitchboardError, toSwitchboardError } from './errors.ts';
import { sendError } from './http-body.ts';
import type { Logger } from './logger.ts';

export interface OpsDeps {
  registry: Registry;
  isReady: () => Promise<boolean>;
  isClosing: () => boolean;
  /** Called before each scrape, to refresh gauges. */
  beforeScrape?: () => void;
}

/** An express app with what every service's HTTP side has: /healthz, /readyz, /metrics. */
export function createServiceApp(ops: OpsDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', async (_req, res) => {
    const ready = !ops.isClosing() && (await ops.isReady());
    res.status(ready ? 200 : 503).json({ ready });
  });
  app.get('/metrics', async (_req, res) => {
    ops.beforeScrape?.();
    res.set('content-type', ops.registry.contentType).send(await ops.registry.metrics());
  });
  return app;
}

/** 404 for unknown routes and the catalog error format for everything thrown; mount last. */
export function finishServiceApp(app: express.Express, log: Logger): express.Express {
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new SwitchboardError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const error = toSwitchboardError(err);
    if (error.code === 'INTERNAL') log.error({ err }, 'request failed');
    sendError(res, error);
  });
  return app;
}
