import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../shared/keys.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../shared/redis-client.ts';
import { SnapshotStore, upsertOf } from '../../shared/store/snapshot.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { startTestSelector, testConfig, type TestSelector } from '../support/service-harness.ts';
import { entry, storeLangBlobs } from '../support/snapshot-replica-fixtures.ts';

const NODES = 1234;

/** `GET /v1/nodes` is paged by cursor (issue 13 deliverable 4): a real selector over a published snapshot. */
describe('GET /v1/nodes pages', () => {
  const prefix = uniquePrefix('pages');
  let selector: TestSelector;
  let redis: RedisClient;
  let store: SnapshotStore;
  let keys: KeyBuilder;
  const ids = Array.from({ length: NODES }, (_, i) => `page-node-${(i * 7919) % NODES}`);

  const publish = async (shard: number, upserts: string[], removals: string[] = []) => {
    await storeLangBlobs(redis, keys);
    return store.publish(shard, {
      at: Date.now(),
      streamCap: 1000,
      loadChangeThreshold: 5,
      upserts: upserts.map((id, i) => upsertOf(entry(id, i))),
      removals,
    });
  };

  beforeAll(async () => {
    const config = testConfig(prefix, { redisUrl: redisUrl() });
    keys = new KeyBuilder(config.prefix, config.shards);
    redis = createRedisClient(config, createLogger('test', 'silent'), { name: 't', mode: 'fail-fast' });
    await waitUntilReady(redis);
    store = new SnapshotStore(redis, keys);
    for (let shard = 0; shard < keys.shards; shard++)
      await publish(
        shard,
        ids.filter((id) => keys.shardOf(id) === shard),
      );
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() });
    await waitFor(
      async () => ((await (await selector.api('/v1/snapshot')).json()) as { nodes: number }).nodes === NODES,
    );
  });
  afterAll(async () => {
    await selector.close();
    await redis.quit();
  });

  type Page = { nodes: { id: string; shard: number; status: string }[]; next_cursor: string | null };
  const get = async (query: string) => {
    const res = await selector.api(`/v1/nodes${query}`);
    return {
      status: res.status,
      body: (await res.json()) as Page & { error?: { code: string; message: string } },
    };
  };

  it('walks every node exactly once, in id order, with the item shape of a snapshot entry + shard', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const { status, body } = await get(`?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      expect(status).toBe(200);
      expect(body.nodes.length).toBeLessThanOrEqual(100);
      seen.push(...body.nodes.map((n) => n.id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(Math.ceil(NODES / 100));
    expect(seen).toEqual([...ids].sort());
    const { body } = await get('?limit=1');
    const first = body.nodes[0]!;
    expect(first.id).toBe(seen[0]);
    expect(typeof first.status).toBe('string');
    expect(first.shard).toBe(keys.shardOf(first.id));
    expect(body.next_cursor).toBe(seen[0]);
  });

  it('answers the default page (500) without a limit, and null next_cursor on the last page', async () => {
    const first = await get('');
    expect(first.body.nodes).toHaveLength(500);
    const sorted = [...ids].sort();
    expect(first.body.next_cursor).toBe(sorted[499]);
    const last = await get(`?limit=5000`);
    expect(last.body.nodes).toHaveLength(NODES);
    expect(last.body.next_cursor).toBeNull();
  });

  it('continues after the cursor when that node was removed meanwhile', async () => {
    const sorted = [...ids].sort();
    const { body } = await get('?limit=10');
    const cursor = body.next_cursor!;
    await publish(keys.shardOf(cursor), [], [cursor]);
    await waitFor(async () => (await get(`?limit=5000`)).body.nodes.length === NODES - 1);
    const next = await get(`?limit=10&cursor=${cursor}`);
    expect(next.body.nodes.map((n) => n.id)).toEqual(sorted.slice(10, 20));
  });

  it.each([
    ['?limit=0', 'limit'],
    ['?limit=5001', 'limit'],
    ['?limit=abc', 'limit'],
    ['?limit=1.5', 'limit'],
    ['?limit=1&limit=2', 'limit'],
    ['?cursor=not%20an%20id', 'cursor'],
    ['?cursor=', 'cursor'],
  ])('%s answers 400 INVALID_MESSAGE naming %s', async (query, field) => {
    const { status, body } = await get(query);
    expect(status).toBe(400);
    expect(body.error?.code).toBe('INVALID_MESSAGE');
    expect(body.error?.message).toMatch(new RegExp(`^${field}: `));
  });
});
