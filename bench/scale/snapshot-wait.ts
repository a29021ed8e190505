/**
 * Waiting on the published snapshot from outside, with plain per-key commands (no pipeline
 * across shards: they are different slots on Redis Cluster).
 */
import type { Cluster, Redis } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import { decodeEntry } from '../../shared/snapshot-entry.ts';
import { benchNodeId } from '../lib/node-messages.ts';

type Client = Redis | Cluster;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Until every node has a checkpoint entry and no shard has dirty or taken nodes left. Throws
 * past the deadline.
 */
export async function waitForPublished(
  redis: Client,
  keys: KeyBuilder,
  nodes: number,
  deadlineMs: number,
): Promise<true> {
  const started = performance.now();
  for (;;) {
    const shards = Array.from({ length: keys.shards }, (_, k) => keys.shard(k));
    const rows = await Promise.all(
      shards.map((k) =>
        Promise.all([redis.hlen(k.checkpoint), redis.scard(k.dirty), redis.exists(k.dirtyTaken)]),
      ),
    );
    const entries = rows.reduce((a, r) => a + r[0], 0);
    const pending = rows.reduce((a, r) => a + r[1] + r[2], 0);
    if (entries >= nodes && pending === 0) return true;
    if (performance.now() - started > deadlineMs)
      throw new Error(
        `not settled within ${deadlineMs / 1000} s: ${entries} of ${nodes} entries, ${pending} dirty/taken`,
      );
    await sleep(250);
  }
}

export interface ReadyResult {
  /** performance.now() when the last one was seen ready. */
  doneAt: number;
  /** Nodes not published `ready` with a heartbeat since `sinceEpochMs` by the deadline. */
  lost: number;
}

/** Until each node (bench index) is published `ready` with a heartbeat received since `sinceEpochMs`. */
export async function waitForReady(
  redis: Client,
  keys: KeyBuilder,
  indexes: number[],
  sinceEpochMs: number,
  deadlineMs: number,
): Promise<ReadyResult> {
  const started = performance.now();
  const pending = new Map<number, string[]>();
  for (const i of indexes) {
    const id = benchNodeId(i);
    const shard = keys.shardOf(id);
    pending.set(shard, [...(pending.get(shard) ?? []), id]);
  }
  for (;;) {
    let left = 0;
    await Promise.all(
      [...pending.entries()].map(async ([shard, ids]) => {
        const still: string[] = [];
        for (let c = 0; c < ids.length; c += 1000) {
          const chunk = ids.slice(c, c + 1000);
          const values = await redis.hmget(keys.shard(shard).checkpoint, ...chunk);
          chunk.forEach((id, j) => {
            const e = values[j] ? (decodeEntry(JSON.parse(values[j]), chunk[j])?.entry ?? null) : null;
            if (!e || e.status !== 'ready' || e.hb < sinceEpochMs) still.push(id);
          });
        }
        pending.set(shard, still);
        left += still.length;
      }),
    );
    if (left === 0) return { doneAt: performance.now(), lost: 0 };
    const now = performance.now();
    if (now - started > deadlineMs) return { doneAt: now, lost: left };
    await sleep(100);
  }
}
