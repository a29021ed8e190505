import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Per-node tokens: `nt1.<node_id>.<base64url HMAC-SHA256(secret, "nt1." + node_id)>`.
 * Any gateway replica with the same secret verifies one without a lookup; a token is bound
 * to its node_id and cannot act for another node.
 */

const VERSION = 'nt1';

function mac(secret: string, nodeId: string): string {
  return createHmac('sha256', secret).update(`${VERSION}.${nodeId}`).digest('base64url');
}

export function issueNodeToken(secret: string, nodeId: string): string {
  return `${VERSION}.${nodeId}.${mac(secret, nodeId)}`;
}

/** The node id a valid node token is bound to, or null when the token is not a valid one. */
export function verifyNodeToken(secret: string, token: string): string | null {
  if (!token.startsWith(`${VERSION}.`)) return null;
  const last = token.lastIndexOf('.');
  if (last <= VERSION.length + 1) return null;
  const nodeId = token.slice(VERSION.length + 1, last);
  return safeEqual(token.slice(last + 1), mac(secret, nodeId)) ? nodeId : null;
}

/** Constant-time string comparison. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
