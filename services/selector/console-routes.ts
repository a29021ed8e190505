import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { AuthConfig } from '../../shared/config.ts';
import { SwitchboardError } from '../../shared/errors.ts';
import { readJsonBody } from '../../shared/http-body.ts';
import type { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import { logQueueErrors, QUEUE_LIVENESS, type DerivedWorkQueues } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import { callerOf } from './api-keys.ts';
import { LoginLimiter } from './login-limiter.ts';
import {
  callerOfKey,
  clearSessionCookie,
  CSRF_HEADER,
  issueSession,
  sessionAuth,
  setSessionCookie,
} from './console-session.ts';

/**
 * The console's routes on the selector (README "Console"): sign-in (at most SB_CONSOLE_LOGIN_RATE
 * attempts a minute per client address, then 429) and sign-out, the built
 * console (a static Vite build, SB_CONSOLE_DIR) at /console/, and bull-board at
 * /console/queues for admins. The console's data comes from the JSON API (/v1), which accepts
 * the session cookie.
 */

export interface ConsoleDeps {
  auth: AuthConfig;
  sessionTtlMs: number;
  /** SB_CONSOLE_LOGIN_RATE: sign-in attempts per client address per minute (0: no limit) */
  loginRate: number;
  /** the built console; null = beside the code (dist/console) */
  consoleDir: string | null;
  queues: DerivedWorkQueues;
  /** a connection for the liveness queue bull-board shows (the worker owns its scheduler) */
  queueRedis: RedisClient;
  keys: KeyBuilder;
  maxMessageBytes: number;
  log: Logger;
}

/**
 * Where `npm run build:console` puts the console: <repo>/dist/console from the sources
 * (tsx), <image>/dist/console from the compiled code (dist/services/selector/…).
 */
export function defaultConsoleDir(): string {
  const fromSources = fileURLToPath(new URL('../../dist/console/', import.meta.url));
  if (!import.meta.url.endsWith('.js')) return fromSources;
  return fileURLToPath(new URL('../../console/', import.meta.url));
}

export function mountConsole(app: express.Express, deps: ConsoleDeps): { close(): Promise<void> } {
  const dir = deps.consoleDir ?? defaultConsoleDir();
  const attempts = new LoginLimiter(deps.loginRate);

  app.post('/console/login', async (req: Request, res: Response) => {
    // per address as this selector sees it (behind a proxy: the proxy's), before the body is read
    attempts.take(req.socket.remoteAddress ?? 'unknown');
    const form = req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') === true;
    const body = form
      ? await readForm(req, deps.maxMessageBytes)
      : await readJsonBody(req, deps.maxMessageBytes);
    const key = (body as { key?: unknown } | null)?.key;
    if (!deps.auth.enabled) {
      if (form) return res.redirect(303, '/console/');
      return res.json({ role: 'admin', tenant: null, auth: false });
    }
    const found = typeof key === 'string' && key !== '' ? callerOfKey(deps.auth, key) : null;
    if (found === null) {
      if (form) return res.redirect(303, '/console/?error=invalid_key');
      throw new SwitchboardError(
        'UNAUTHORIZED',
        'key: not a valid API key (SB_API_KEYS or SB_ADMIN_API_KEYS)',
      );
    }
    const expiresAt = Date.now() + deps.sessionTtlMs;
    setSessionCookie(req, res, issueSession(found.key, found.admin, expiresAt), deps.sessionTtlMs);
    deps.log.info({ tenant: found.key.tenant, admin: found.admin }, 'console sign-in');
    if (form) return res.redirect(303, '/console/');
    res.json({ role: found.admin ? 'admin' : 'viewer', tenant: found.key.tenant, expires_at: expiresAt });
  });

  app.post('/console/logout', (req: Request, res: Response) => {
    clearSessionCookie(req, res);
    res.json({ signed_out: true });
  });

  const session = sessionAuth(deps.auth);
  app.get('/console/session', session, (_req: Request, res: Response) => {
    if (!deps.auth.enabled) return res.json({ role: 'admin', tenant: null, auth: false });
    const caller = callerOf(res);
    if (caller === null) throw new SwitchboardError('UNAUTHORIZED', 'not signed in');
    res.json({ role: caller.admin ? 'admin' : 'viewer', tenant: caller.tenant, auth: true });
  });

  // bull-board: admins only, read-only (its own mutating requests would carry no CSRF header).
  // Its modules load on its first request: at every selector start they cost ~70 ms.
  const liveness = new Queue(QUEUE_LIVENESS, { connection: deps.queueRedis, prefix: deps.keys.queuePrefix });
  // an unreachable Redis is said once by the service, not as a stack trace per retry
  logQueueErrors(liveness, deps.log, { queue: QUEUE_LIVENESS }, 'queue error');
  const queues = [deps.queues.snapshotFlush, deps.queues.failover, liveness];
  let board: Promise<express.Router> | null = null;
  app.use(
    '/console/queues',
    session,
    adminGate(deps.auth),
    (req: Request, res: Response, next: NextFunction) => {
      board ??= bullBoard(queues);
      board.then(
        (router) => router(req, res, next),
        (err: unknown) => {
          board = null; // try again on the next request
          next(err);
        },
      );
    },
  );

  app.use(
    '/console',
    (req: Request, res: Response, next: NextFunction) => {
      if (existsSync(`${dir}/index.html`)) return next();
      res
        .status(503)
        .type('text/plain')
        .send(`the console is not built: run \`npm run build:console\` (looked in ${dir})\n`);
    },
    express.static(dir, { index: 'index.html', fallthrough: true, maxAge: 0 }),
  );
  return { close: () => liveness.close() };
}

/** bull-board's router over `queues`, read-only, at /console/queues. */
async function bullBoard(queues: Queue[]): Promise<express.Router> {
  const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
    import('@bull-board/express'),
  ]);
  const adapter = new ExpressAdapter();
  adapter.setBasePath('/console/queues');
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode: true })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'Switchboard queues' } },
  });
  return adapter.getRouter() as express.Router;
}

/** bull-board: a signed-in admin (cookie) or an admin key; only reads. */
function adminGate(auth: AuthConfig) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return next(new SwitchboardError('UNAUTHORIZED', 'the queue view is read-only', { status: 403 }));
    if (!auth.enabled) return next();
    let caller = callerOf(res);
    if (caller === null) {
      const header = req.headers.authorization;
      const found = header?.startsWith('Bearer ') ? callerOfKey(auth, header.slice(7).trim()) : null;
      caller = found ? { tenant: found.key.tenant, admin: found.admin } : null;
    }
    if (caller === null) {
      if (req.accepts('html') && req.method === 'GET') return res.redirect(303, '/console/');
      return next(new SwitchboardError('UNAUTHORIZED', 'sign in at /console/ with an admin key'));
    }
    if (!caller.admin)
      return next(
        new SwitchboardError('UNAUTHORIZED', 'the queue view needs an admin key (SB_ADMIN_API_KEYS)', {
          status: 403,
        }),
      );
    next();
  };
}

/** `key=…` from a urlencoded form body (the console's plain login form). */
async function readForm(req: Request, limit: number): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit)
      throw new SwitchboardError('INVALID_MESSAGE', `body exceeds ${limit} bytes`, { status: 413 });
    chunks.push(chunk);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

export { CSRF_HEADER };
