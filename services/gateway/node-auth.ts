import type { AuthConfig } from '../../shared/config.ts';
import { SwitchboardError } from '../../shared/errors.ts';
import type { KeyBuilder } from '../../shared/keys.ts';
import { issueNodeToken, oneOf, verifyNodeToken } from '../../shared/node-token.ts';
import type { RedisClient } from '../../shared/redis-client.ts';

/**
 * Who is talking: `open` (auth off), `join` (a cluster join token: may register, nothing
 * else; a known id only under SB_JOIN_REREGISTER), or `node` (a node token, or a socket that
 * registered the node: may act only for its own node id).
 */
export type Principal = { kind: 'open' } | { kind: 'join' } | { kind: 'node'; nodeId: string };

/** A node token and when it expires (ms since the epoch). */
export interface IssuedToken {
  token: string;
  expiresAt: number;
}

export class NodeAuthenticator {
  constructor(
    private readonly auth: AuthConfig,
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
  ) {}

  get enabled(): boolean {
    return this.auth.enabled;
  }

  get joinPolicy(): 'offline' | 'refuse' {
    return this.auth.joinReregister;
  }

  /**
   * Authenticates a bearer token; throws UNAUTHORIZED (401) when missing, invalid, expired or
   * revoked. A node token costs one HGET (its node's token generation), so a revocation holds
   * on every gateway at once.
   */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (!this.auth.enabled) return { kind: 'open' };
    if (!token)
      throw new SwitchboardError(
        'UNAUTHORIZED',
        'missing token: send Authorization: Bearer <token> or ?token=',
      );
    if (oneOf(this.auth.joinTokens, token)) return { kind: 'join' };
    const claims = verifyNodeToken(this.auth.nodeTokenSecrets, token);
    if (claims === null) throw new SwitchboardError('UNAUTHORIZED', 'invalid token');
    if (claims.expiresAt !== 0 && claims.expiresAt <= Date.now())
      throw new SwitchboardError(
        'UNAUTHORIZED',
        'node token expired: register with the join token for a new one (agents renew theirs by re-registering)',
      );
    if (claims.generation !== (await this.generation(claims.nodeId)))
      throw new SwitchboardError('UNAUTHORIZED', `node token revoked for ${claims.nodeId}`);
    return { kind: 'node', nodeId: claims.nodeId };
  }

  /** A token for `nodeId`, of its current generation, valid SB_NODE_TOKEN_TTL_MS; null when auth is off. */
  async issue(nodeId: string): Promise<IssuedToken | null> {
    if (!this.auth.enabled) return null;
    const expiresAt = Date.now() + this.auth.nodeTokenTtlMs;
    const generation = await this.generation(nodeId);
    return {
      token: issueNodeToken(this.auth.nodeTokenSecrets[0]!, { nodeId, generation, expiresAt }),
      expiresAt,
    };
  }

  private async generation(nodeId: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.forNode(nodeId).tokens, nodeId)) ?? 0);
  }

  /**
   * Throws UNAUTHORIZED (403) when a node token is used to act for another node, or the join
   * token for anything but registering.
   */
  static assertMayActFor(principal: Principal, nodeId: string): void {
    if (principal.kind === 'join') {
      throw new SwitchboardError(
        'UNAUTHORIZED',
        `the join token may only register; act for ${nodeId} with the node_token of its register ack`,
        { status: 403 },
      );
    }
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
