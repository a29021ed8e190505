import type { NextFunction, Request, Response } from 'express';
import type { AuthConfig } from '../../shared/config.ts';
import { SwitchboardError } from '../../shared/errors.ts';
import { safeEqual } from '../../shared/node-token.ts';

/**
 * Who calls the selector's API: a tenant's client key, or an admin key (the admin routes, and
 * everything a client key may do, for any tenant). `null` when auth is off: no boundary.
 */
export interface Caller {
  tenant: string;
  admin: boolean;
  /** signed in to the console (session cookie): a client key's session may read the admin GETs */
  session?: boolean;
}

/** The caller of a request, set by `apiKeyAuth`. */
export function callerOf(res: Response): Caller | null {
  return (res.locals['caller'] as Caller | undefined) ?? null;
}

/**
 * Resolves `Authorization: Bearer <key>` against SB_API_KEYS / SB_API_KEY (clients) and
 * SB_ADMIN_API_KEYS (admins); every key is compared, in constant time. 401 without a valid key.
 */
export function apiKeyAuth(auth: AuthConfig) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!auth.enabled || res.locals['caller'] !== undefined) return next(); // auth off, or a console session
    const header = req.headers.authorization;
    const presented = header?.startsWith('Bearer ') ? header.slice(7).trim() : '';
    let caller: Caller | null = null;
    for (const { key, tenant } of auth.adminKeys) {
      if (safeEqual(presented, key) && caller === null) caller = { tenant, admin: true };
    }
    for (const { key, tenant } of auth.apiKeys) {
      if (safeEqual(presented, key) && caller === null) caller = { tenant, admin: false };
    }
    if (!presented || caller === null) {
      return next(
        new SwitchboardError(
          'UNAUTHORIZED',
          'missing or invalid API key: send Authorization: Bearer <key> (or sign in at /console/)',
        ),
      );
    }
    res.locals['caller'] = caller;
    next();
  };
}

/** Mount on the admin routes: 403 for a client key. */
export function adminOnly(req: Request, res: Response, next: NextFunction): void {
  const caller = callerOf(res);
  if (caller !== null && !caller.admin) {
    return next(
      new SwitchboardError(
        'UNAUTHORIZED',
        `${req.method} ${req.path} needs an admin key (SB_ADMIN_API_KEYS); this is a client key`,
        { status: 403 },
      ),
    );
  }
  next();
}

/**
 * The tenant a new job belongs to: the client key's (a `tenant_id` naming another tenant is
 * refused, 403); an admin key acts for the `tenant_id` it names, else for its own. Null when
 * auth is off (then `tenant_id` is only stored).
 */
export function jobTenant(caller: Caller | null, requested: string | null | undefined): string | null {
  if (caller === null) return null;
  if (requested == null || requested === caller.tenant) return caller.tenant;
  if (caller.admin) return requested;
  throw new SwitchboardError(
    'UNAUTHORIZED',
    `tenant_id: this API key belongs to tenant ${JSON.stringify(caller.tenant)}, not ${JSON.stringify(requested)}`,
    { status: 403 },
  );
}

/** The tenant whose jobs a caller may read: undefined = every job (admin, or auth off). */
export function readableTenant(caller: Caller | null): string | undefined {
  return caller === null || caller.admin ? undefined : caller.tenant;
}
