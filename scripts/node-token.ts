import { parseArgs } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { loadConfig } from '../shared/config.ts';
import { issueOutOfBand } from './lib/out-of-band-token.ts';

/**
 * Prints a node token for one node id, issued out of band (README "Credentials"):
 *   npm run node-token -- <node_id> [--ttl-ms N]      (N = 0: never expires; default SB_NODE_TOKEN_TTL_MS)
 * Reads the gateway's configuration from the environment (SB_NODE_TOKEN_SECRET(S), SB_PREFIX,
 * SB_SHARDS, REDIS_URL or REDIS_CLUSTER_NODES) and the node's token generation from Redis.
 */
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'ttl-ms': { type: 'string' } },
});
const nodeId = positionals[0];
if (!nodeId || positionals.length > 1) {
  console.error('usage: npm run node-token -- <node_id> [--ttl-ms N]   (N = 0: never expires)');
  process.exit(2);
}
const config = loadConfig(process.env, 'gateway');
const redis = config.redis.clusterNodes
  ? new Cluster(config.redis.clusterNodes)
  : new Redis(config.redis.url);
try {
  const ttlMs = values['ttl-ms'] === undefined ? config.env.SB_NODE_TOKEN_TTL_MS : Number(values['ttl-ms']);
  const { token, expiresAt } = await issueOutOfBand(config, redis, nodeId, ttlMs);
  console.log(token);
  console.error(expiresAt === 0 ? 'never expires' : `expires at ${new Date(expiresAt).toISOString()}`);
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
} finally {
  redis.disconnect();
}
