import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Per-node tokens: `nt2.<node_id>.<generation>.<expires_at ms, 0 = never>.<base64url MAC>`,
 * MAC = HMAC-SHA256(secret, everything before it). Any gateway replica with one of the secrets
 * verifies one without a lookup of the MAC; a token is bound to its node_id and cannot act for
 * another node. The generation is the node's revocation counter (`{p:sK}:tokens`): revoking a
 * node bumps it, and every token issued before is refused. Rotation: the first secret signs,
 * every one verifies.
 */

const VERSION = 'nt2';

export interface NodeTokenClaims {
  nodeId: string;
  generation: number;
  /** ms since the epoch; 0 = never expires (tokens issued out of band only). */
  expiresAt: number;
}

function mac(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('base64url');
}

export function issueNodeToken(secret: string, claims: NodeTokenClaims): string {
  const body = `${VERSION}.${claims.nodeId}.${claims.generation}.${claims.expiresAt}`;
  return `${body}.${mac(secret, body)}`;
}

/**
 * The claims of a token whose MAC one of `secrets` made, or null (not a node token, or
 * forged). Expiry and generation are the caller's to check.
 */
export function verifyNodeToken(secrets: readonly string[], token: string): NodeTokenClaims | null {
  if (!token.startsWith(`${VERSION}.`)) return null;
  const parts = token.split('.');
  // nt2 . <id, may hold dots> . gen . exp . mac
  if (parts.length < 5) return null;
  const tag = parts.pop()!;
  const expires = parts.pop()!;
  const generation = parts.pop()!;
  const nodeId = parts.slice(1).join('.');
  if (!nodeId || !/^\d{1,15}$/.test(generation) || !/^\d{1,15}$/.test(expires)) return null;
  const body = token.slice(0, token.length - tag.length - 1);
  // every secret is tried, so the time taken does not tell which one matched
  let valid = false;
  for (const secret of secrets) valid = safeEqual(tag, mac(secret, body)) || valid;
  return valid ? { nodeId, generation: Number(generation), expiresAt: Number(expires) } : null;
}

/** Constant-time string comparison. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** True when `candidate` equals one of `secrets` (each compared in constant time). */
export function oneOf(secrets: readonly string[], candidate: string): boolean {
  let found = false;
  for (const secret of secrets) found = safeEqual(candidate, secret) || found;
  return found;
}
