/** Shared fixtures for the SnapshotReplica integration tests (test/integration/snapshot-replica*.test.ts). */
import { expect } from 'vitest';
import type { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import type { SnapshotReplica } from '../../services/selector/snapshot-replica.ts';
import type { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import { decodeEntry, encodeEntry, type SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { SnapshotStore, upsertOf } from '../../shared/store/snapshot.ts';
import { waitFor } from './redis.ts';

export const log = createLogger('snapshot-replica-test', 'silent');
export const SHARDS = 4;

export const LANGS: SnapshotEntry['lang'][] = [
  {
    asr_languages: ['zh', 'en'],
    tts_languages: ['en'],
    nmt_capabilities: [{ model_id: 'm', languages: ['zh', 'en'], rule: 'any_to_any' }],
  },
  {
    asr_languages: ['ja'],
    tts_languages: ['ja', 'en'],
    nmt_capabilities: [{ model_id: 'm', languages: ['ja', 'en'], rule: 'any_to_any' }],
  },
  {},
];

/** A valid entry whose fields vary with `seed` (what buildSnapshotEntry would produce). */
export function entry(id: string, seed: number, at = 1_000 + seed): SnapshotEntry {
  return {
    id,
    status: seed % 5 === 0 ? 'degraded' : 'ready',
    draining: seed % 7 === 0,
    hb: at - 1,
    at,
    gpu: seed % 2 === 0,
    public: true,
    types: seed % 3 === 0 ? ['asr'] : ['asr', 'nmt', 'tts'],
    features: [],
    lang: LANGS[seed % LANGS.length]!,
    langDigest: `d${seed % LANGS.length}`,
    pools: [],
    max: 4,
    running: seed % 4,
    reserved: 0,
    cpu: seed % 100,
    gpuPct: seed % 2 === 0 ? seed % 90 : null,
    mem: 30,
  };
}

/**
 * The blobs of LANGS under their digests (`d0`…) in every shard's caps hash, as the gateway's
 * scripts would have stored them: entries name their languages by digest, and the publish
 * script publishes no entry whose blob the shard lacks.
 */
export async function storeLangBlobs(redis: RedisClient, keys: KeyBuilder): Promise<void> {
  const blobs = LANGS.flatMap((lang, i) => [`d${i}`, JSON.stringify(lang)]);
  for (let shard = 0; shard < keys.shards; shard++) await redis.hset(keys.shard(shard).caps, ...blobs);
}

/** Publishes like the worker's flush does: the real script, one new version per call. */
export async function publish(
  redis: RedisClient,
  keys: KeyBuilder,
  shard: number,
  upserts: SnapshotEntry[],
  removals: string[] = [],
  at = Date.now(),
): Promise<number> {
  const store = new SnapshotStore(redis, keys);
  await storeLangBlobs(redis, keys);
  return (
    await store.publish(shard, {
      at,
      streamCap: 1000,
      loadChangeThreshold: 5,
      upserts: upserts.map((e) => upsertOf(e)),
      removals,
    })
  ).version;
}

export async function redisVersions(redis: RedisClient, keys: KeyBuilder): Promise<number[]> {
  const shards = Array.from({ length: keys.shards }, (_, s) => s);
  return Promise.all(shards.map(async (s) => Number((await redis.get(keys.shard(s).version)) ?? 0)));
}

/** Every shard's checkpoint, id → JSON, vs. the replica's index. */
export async function expectReplicaEqualsRedis(redis: RedisClient, keys: KeyBuilder, index: SnapshotIndex) {
  let total = 0;
  for (let shard = 0; shard < keys.shards; shard++) {
    const checkpoint: Record<string, string> = {};
    // as the checkpoint form (a value written before the id was left out names it)
    for (const [id, json] of Object.entries(await redis.hgetall(keys.shard(shard).checkpoint)))
      checkpoint[id] = encodeEntry(decodeEntry(JSON.parse(json), id)!.entry, 'checkpoint');
    const replica: Record<string, string> = {};
    for (const node of index.all())
      if (node.shard === shard) replica[node.entry.id] = encodeEntry(node.entry, 'checkpoint');
    expect(replica, `shard ${shard}`).toEqual(checkpoint);
    total += Object.keys(checkpoint).length;
  }
  expect(index.size).toBe(total);
}

export async function caughtUp(
  redis: RedisClient,
  keys: KeyBuilder,
  replica: SnapshotReplica,
): Promise<void> {
  await waitFor(
    async () => {
      const versions = await redisVersions(redis, keys);
      expect(replica.status().shards.map((s) => s.version)).toEqual(versions);
    },
    { timeoutMs: 5000, intervalMs: 20, message: 'replica did not catch up' },
  );
}
