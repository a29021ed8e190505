import type { Config } from '../../shared/config.ts';
import { KeyBuilder, NODE_ID_PATTERN } from '../../shared/keys.ts';
import { issueNodeToken } from '../../shared/node-token.ts';

/** The one Redis read an out-of-band token needs. */
interface GenerationReader {
  hget(key: string, field: string): Promise<string | null>;
}

/**
 * A node token issued out of band (README "Credentials"): for a node that cannot read the
 * register ack (the lingua client), to put in its `?token=`. It carries the node's current
 * token generation, so a later revocation refuses it; `ttlMs` 0 = it never expires.
 */
export async function issueOutOfBand(
  config: Config,
  redis: GenerationReader,
  nodeId: string,
  ttlMs: number,
): Promise<{ token: string; expiresAt: number }> {
  if (!NODE_ID_PATTERN.test(nodeId)) throw new Error('node id: expected 1-128 of [A-Za-z0-9._:-]');
  if (!Number.isInteger(ttlMs) || ttlMs < 0) throw new Error('--ttl-ms: expected an integer >= 0');
  const secret = config.auth.nodeTokenSecrets[0];
  if (!secret)
    throw new Error('SB_NODE_TOKEN_SECRETS (or SB_NODE_TOKEN_SECRET): required to sign a node token');
  const keys = new KeyBuilder(config.prefix, config.shards);
  const generation = Number((await redis.hget(keys.forNode(nodeId).tokens, nodeId)) ?? 0);
  const expiresAt = ttlMs === 0 ? 0 : Date.now() + ttlMs;
  return { token: issueNodeToken(secret, { nodeId, generation, expiresAt }), expiresAt };
}
