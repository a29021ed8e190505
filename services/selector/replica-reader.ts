import { Cluster } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import type { RedisClient } from '../../shared/redis-client.ts';

/**
 * One blocking reader of the SnapshotReplica (snapshot-replica.ts): its connection, duplicated
 * from the client given, and the shards whose delta streams it tails.
 */
export interface Reader {
  readonly conn: RedisClient;
  readonly shards: number[];
  readonly streams: string[];
  /** Compare with Redis before the next read (an error or a reconnect happened). */
  suspect: boolean;
  lastVerify: number;
}

/**
 * A reader of `shards`, named after the client given (CLIENT LIST): `<its name>:snapshot`. On
 * a Cluster a `duplicate()` without the CLUSTER INFO ready check (it would keep a second, idle
 * socket to a random node). A reconnect marks it suspect; errors are logged at debug (an
 * unreachable Redis is the service's RedisReachability's to say, and 'snapshot reader failing').
 */
export function createReader(
  redis: RedisClient,
  shards: number[],
  keys: KeyBuilder,
  log: Logger,
  closed: () => boolean,
): Reader {
  const base =
    redis instanceof Cluster ? redis.options.redisOptions?.connectionName : redis.options.connectionName;
  const connectionName = `${base ?? 'sb'}:snapshot`;
  const conn =
    redis instanceof Cluster
      ? redis.duplicate([], { enableReadyCheck: false, redisOptions: { connectionName } })
      : redis.duplicate({ connectionName });
  const reader: Reader = {
    conn,
    shards,
    streams: shards.map((shard) => keys.shard(shard).deltas),
    suspect: false,
    lastVerify: 0,
  };
  let down = false;
  let connected = false;
  conn.on('error', (err: Error) => {
    if (!down && !closed()) log.debug({ err: err.message, shards }, 'snapshot reader: redis error');
    down = true;
  });
  conn.on('ready', () => {
    if (connected) reader.suspect = true; // a reconnect: compare versions before trusting the stream
    connected = true;
    down = false;
  });
  return reader;
}
