import type { NextFunction, Request, Response } from 'express';
import { SwitchboardError } from './errors.ts';

/**
 * Route parameters (the `:node_id` of `/v1/nodes/:node_id/heartbeat`) decoded safely: a
 * malformed percent-escape (`%`, `%zz`, `%E0%A4%A`, the overlong `%C0%80`) is a 400
 * INVALID_MESSAGE naming the parameter, never a URIError that kills the process (the gateway's
 * node:http fast path) or a 500 with a stack trace (express, which decodes params itself).
 * Every route with parameters goes through here: the gateway's heartbeat fast path and job
 * routes, the selector's job and node routes.
 */

/** Decodes one raw (still percent-encoded) path segment, or throws 400 naming `name`. */
export function decodeRouteParam(name: string, raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw malformed(name);
  }
}

function malformed(name: string): SwitchboardError {
  return new SwitchboardError(
    'INVALID_MESSAGE',
    `${name}: malformed percent-encoding in the URL path (expected UTF-8 %XX escapes)`,
  );
}

/**
 * Express middleware, mounted before the routes: rejects a request whose path has a segment
 * that does not decode, naming the parameter of the first route template (`/v1/jobs/:id`)
 * that the path's shape fits (`path` when none does). Express would otherwise fail the match
 * with a bare URIError.
 */
export function guardRouteParams(templates: readonly string[]) {
  const shapes = templates.map((t) => t.split('/'));
  return (req: Request, _res: Response, next: NextFunction): void => {
    const path = (req.originalUrl || req.url).split('?', 1)[0]!;
    if (!path.includes('%')) return next();
    const segments = path.split('/');
    const bad = segments.findIndex((s) => s.includes('%') && !decodes(s));
    if (bad < 0) return next();
    const shape = shapes.find(
      (parts) =>
        parts.length === segments.length &&
        parts.every((part, i) => part.startsWith(':') || part === segments[i] || i === bad),
    );
    const part = shape?.[bad];
    next(malformed(part?.startsWith(':') ? part.slice(1) : 'path'));
  };
}

function decodes(segment: string): boolean {
  try {
    decodeURIComponent(segment);
    return true;
  } catch {
    return false;
  }
}

/** A decoded express route parameter (express 5 decoded it; `guardRouteParams` vetted it). */
export function routeParam(req: Request, name: string): string {
  return String(req.params[name] ?? '');
}
