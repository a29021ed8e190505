import express, { type NextFunction, type Request, type Response } from 'express';
import { SwitchboardError, toSwitchboardError } from './errors.ts';
import { sendError } from './http-body.ts';
import type { Logger } from './logger.ts';

/**
 * An express app with the settings every service's API shares. The operational endpoints
 * (/healthz, /readyz, /metrics) are answered before it, by the service's ServiceHttp.
 */
export function createServiceApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  return app;
}

/** 404 for unknown routes and the catalog error format for everything thrown; mount last. */
export function finishServiceApp(app: express.Express, log: Logger): express.Express {
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new SwitchboardError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    // express's own URIError for a param that does not decode (guardRouteParams names the param first)
    const error =
      err instanceof URIError
        ? new SwitchboardError('INVALID_MESSAGE', 'path: malformed percent-encoding in the URL path')
        : toSwitchboardError(err);
    if (error.code === 'INTERNAL') log.error({ err }, 'request failed');
    sendError(res, error);
  });
  return app;
}
