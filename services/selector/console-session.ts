import { createHash, createHmac } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { ApiKey, AuthConfig } from '../../shared/config.ts';
import { SwitchboardError } from '../../shared/errors.ts';
import { safeEqual } from '../../shared/node-token.ts';
import type { Caller } from './api-keys.ts';

/**
 * Console sign-in (README "Console"): the login form posts an API key; the answer sets a
 * session cookie that every selector replica verifies without shared state. The cookie is
 * `v1.<role>.<tenant>.<expires ms>.<key id>.<mac>`: role `a` (admin key) or `r` (client key,
 * read-only), the tenant base64url, the key id = the first 16 hex of sha256(key), and the mac
 * = HMAC-SHA256 over the rest keyed by the API key itself. Removing a key from the
 * configuration ends its sessions; otherwise a session lasts SB_CONSOLE_SESSION_TTL_MS.
 *
 * HttpOnly (scripts cannot read it), SameSite=Strict (no other site's page sends it), Path=/,
 * Secure when the request came over https (directly or through a proxy's X-Forwarded-Proto).
 * A request authenticated by the cookie that changes state must also carry the header
 * `x-sb-console: 1`, which no cross-site form can set (CSRF).
 */

export const SESSION_COOKIE = 'switchboard_session';
export const CSRF_HEADER = 'x-sb-console';

type Role = 'a' | 'r';

function keyId(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

function mac(key: string, payload: string): string {
  return createHmac('sha256', key).update(payload).digest('base64url');
}

/** The signed cookie value for a key. */
export function issueSession(key: ApiKey, admin: boolean, expiresAt: number): string {
  const role: Role = admin ? 'a' : 'r';
  const payload = `v1.${role}.${Buffer.from(key.tenant).toString('base64url')}.${expiresAt}.${keyId(key.key)}`;
  return `${payload}.${mac(key.key, payload)}`;
}

/** The caller a cookie value stands for; null when malformed, forged, expired or its key is gone. */
export function verifySession(auth: AuthConfig, value: string, now = Date.now()): Caller | null {
  const parts = value.split('.');
  if (parts.length !== 6 || parts[0] !== 'v1') return null;
  const [, role, tenant64, expires, id, given] = parts as [string, string, string, string, string, string];
  if ((role !== 'a' && role !== 'r') || !(Number(expires) > now)) return null;
  const payload = parts.slice(0, 5).join('.');
  for (const key of role === 'a' ? auth.adminKeys : auth.apiKeys) {
    if (keyId(key.key) !== id) continue;
    const tenant = Buffer.from(tenant64, 'base64url').toString();
    if (tenant === key.tenant && safeEqual(given, mac(key.key, payload)))
      return { tenant, admin: role === 'a', session: true };
  }
  return null;
}

/** The key's caller (admin keys first), or null; compares every key in constant time. */
export function callerOfKey(auth: AuthConfig, presented: string): { key: ApiKey; admin: boolean } | null {
  let found: { key: ApiKey; admin: boolean } | null = null;
  for (const key of auth.adminKeys)
    if (safeEqual(presented, key.key) && found === null) found = { key, admin: true };
  for (const key of auth.apiKeys)
    if (safeEqual(presented, key.key) && found === null) found = { key, admin: false };
  return found;
}

export function readCookie(req: Request, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function secure(req: Request): boolean {
  const proto = req.headers['x-forwarded-proto'];
  return req.secure || (typeof proto === 'string' && proto.split(',')[0]!.trim() === 'https');
}

export function setSessionCookie(req: Request, res: Response, value: string, maxAgeMs: number): void {
  const attrs = [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.floor(maxAgeMs / 1000)}`,
    ...(secure(req) ? ['Secure'] : []),
  ];
  res.setHeader('set-cookie', attrs.join('; '));
}

export function clearSessionCookie(req: Request, res: Response): void {
  setSessionCookie(req, res, '', 0);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Mount before apiKeyAuth: a request without an Authorization header but with a valid session
 * cookie is that session's caller. A state-changing one needs the CSRF header (403 without).
 */
export function sessionAuth(auth: AuthConfig) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!auth.enabled || req.headers.authorization) return next();
    const value = readCookie(req, SESSION_COOKIE);
    if (!value) return next();
    const caller = verifySession(auth, value);
    if (caller === null) {
      return next(new SwitchboardError('UNAUTHORIZED', 'console session expired or invalid: sign in again'));
    }
    if (!SAFE_METHODS.has(req.method) && req.headers[CSRF_HEADER] !== '1') {
      return next(
        new SwitchboardError(
          'UNAUTHORIZED',
          `${req.method} with a session cookie needs the header ${CSRF_HEADER}: 1`,
          {
            status: 403,
          },
        ),
      );
    }
    res.locals['caller'] = caller;
    next();
  };
}
