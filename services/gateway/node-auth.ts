import type { AuthConfig } from '../../shared/config.ts';
import { SwitchboardError } from '../../shared/errors.ts';
import { safeEqual, verifyNodeToken } from '../../shared/node-token.ts';

/**
 * Who is talking: `open` (auth off), `join` (the cluster join token: may act for any node id),
 * or `node` (a node token: may act only for its own node id).
 */
export type Principal = { kind: 'open' } | { kind: 'join' } | { kind: 'node'; nodeId: string };

export class NodeAuthenticator {
  constructor(private readonly auth: AuthConfig) {}

  /** Authenticates a bearer token; throws UNAUTHORIZED (401) when missing or invalid. */
  authenticate(token: string | undefined): Principal {
    if (!this.auth.enabled) return { kind: 'open' };
    if (!token)
      throw new SwitchboardError(
        'UNAUTHORIZED',
        'missing token: send Authorization: Bearer <token> or ?token=',
      );
    if (safeEqual(token, this.auth.joinToken)) return { kind: 'join' };
    const nodeId = verifyNodeToken(this.auth.nodeTokenSecret, token);
    if (nodeId !== null) return { kind: 'node', nodeId };
    throw new SwitchboardError('UNAUTHORIZED', 'invalid token');
  }

  /** Throws UNAUTHORIZED (403) when a node token is used to act for another node. */
  static assertMayActFor(principal: Principal, nodeId: string): void {
    if (principal.kind === 'node' && principal.nodeId !== nodeId) {
      throw new SwitchboardError('UNAUTHORIZED', `this node token belongs to another node, not ${nodeId}`, {
        status: 403,
      });
    }
  }
}

/** Bearer token from an Authorization header, else from the `token` query parameter. */
export function tokenFrom(authorization: string | undefined, url: string | undefined): string | undefined {
  if (authorization?.startsWith('Bearer ')) return authorization.slice(7).trim();
  if (url && url.includes('token=')) {
    const q = url.indexOf('?');
    if (q >= 0) return new URLSearchParams(url.slice(q + 1)).get('token') ?? undefined;
  }
  return undefined;
}
