import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { capabilityPart } from '../../shared/capability-digest.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { buildSnapshotEntry, ENTRY_FIELDS, publishedValues } from '../../shared/snapshot-entry.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { testConfig } from '../support/service-harness.ts';

/**
 * Issue 12 deliverable 5: where the pipeline lag of a change starts. registerNode and a
 * heartbeat that changed something stamp `chg_at` (server time) when it is the node's first
 * change since its last publication; the flush carries it as the entry's `changedAt`.
 */
describe('pipeline lag stamp (chg_at → entry.changedAt)', () => {
  let redis: RedisClient;
  let keys: KeyBuilder;
  let n = 0;
  let id: string;

  beforeAll(async () => {
    const config = testConfig(uniquePrefix('lag'), { redisUrl: redisUrl() });
    keys = new KeyBuilder(config.prefix, config.shards);
    redis = createRedisClient(config, createLogger('test', 'silent'), { name: 'test', mode: 'fail-fast' });
    await waitUntilReady(redis);
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(() => {
    id = `lag-node-${++n}`;
  });

  const k = () => keys.forNode(id);
  const svc = capabilityPart({ capability_by_type: [{ type: 'asr', ready: true }] });
  const stamp = async () => Number(await redis.hget(k().node(id), 'chg_at'));

  function register(now: number) {
    const st = capabilityPart({ hardware: 'x' });
    const lang = capabilityPart({ asr_languages: ['en'] });
    const s = k();
    return redis.registerNode(
      s.node(id), s.live, s.offline, s.dirty, s.caps, s.capRefs, id, now, 1, 4,
      st.digest, st.blob, svc.digest, svc.blob, lang.digest, lang.blob, 0,
    ); // prettier-ignore
  }

  function heartbeat(now: number, cpu: number, maxAgeMs = 30_000) {
    const s = k();
    return redis.recordHeartbeat(
      s.node(id), s.live, s.offline, s.dirty, s.published, s.caps, s.capRefs, id, now, now,
      cpu, 20, '', 30, 0, 1, 1, svc.digest, svc.blob, '', '', 5, maxAgeMs, 3, 5000,
    ); // prettier-ignore
  }

  /** What a flush does for this node: read the record, build the entry, publish its values. */
  async function publish(at: number) {
    const values = await redis.hmget(k().node(id), ...ENTRY_FIELDS);
    const entry = buildSnapshotEntry(id, values, at)!;
    await redis.hset(k().node(id), 'pub', publishedValues(entry));
    await redis.srem(k().dirty, id);
    return entry;
  }

  it('registration stamps; the first change after a publication stamps; later ones keep it', async () => {
    await register(1_000);
    expect(await stamp()).toBe(1_000);
    await heartbeat(1_010, 10); // registering → ready, before any publication: keeps 1,000
    expect(await stamp()).toBe(1_000);
    expect((await publish(1_020)).changedAt).toBe(1_000);

    await heartbeat(1_030, 12); // not significant (2 points): nothing to show, no stamp
    expect(await stamp()).toBe(1_000);
    await heartbeat(1_040, 50); // significant: first change since the publication at 1,020
    expect(await stamp()).toBe(1_040);
    await heartbeat(1_050, 90); // another change, same publication pending: the lag started at 1,040
    expect(await stamp()).toBe(1_040);
    expect((await publish(1_060)).changedAt).toBe(1_040);
  });

  it('a republication for age alone is not a change: no new stamp', async () => {
    await register(2_000);
    await heartbeat(2_010, 10);
    await publish(2_020);
    expect(await redis.sismember(k().dirty, id)).toBe(0);
    await heartbeat(40_000, 10, 30_000); // published entry older than the max age: dirty again
    expect(await redis.sismember(k().dirty, id)).toBe(1);
    expect(await stamp()).toBe(2_000);
    expect((await publish(40_010)).changedAt).toBe(2_000); // same value: measured once already
  });
});
