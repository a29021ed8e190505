import type { ChainableCommander } from 'ioredis';
import type { KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';
import { ENTRY_FIELDS, publishedValues, type SnapshotEntry } from '../snapshot-entry.ts';

/**
 * The snapshot's consistency domain in Redis (issue 12 deliverable 1): the ONE place that builds
 * the keys of the dirty set → flush → checkpoint/delta pipeline, packs the arguments of
 * `takeDirty-2.lua` and `publishSnapshot-6+.lua` from named fields and names their replies.
 * Services (the worker's flush) and tests go through it, never through the raw scripts.
 */

/** One flush's batch: `takeDirty-2.lua`'s reply, named. */
export interface DirtyBatch {
  /** The batch was left by a flush that crashed (returned again, nothing more taken). */
  recovered: boolean;
  /** Dirty nodes left behind for the next flush. */
  remaining: number;
  ids: string[];
}

/**
 * The node hash fields whose values, read by the flush, must still be there when it publishes:
 * a heartbeat applied in between writes them (hb_ts, hb_at, maybe status). Joined with '|'.
 */
export const STAMP_FIELDS = ['status', 'hb_ts', 'hb_at'] as const;

/** A node as the flush read it: its entry fields (ENTRY_FIELDS order) and its stamp. */
export interface NodeRead {
  id: string;
  /** HMGET of ENTRY_FIELDS; all null when the record is gone. */
  values: (string | null)[];
  stamp: string;
  /** The node's published values (`:pub`) before this flush, or null. */
  previous: string | null;
}

export interface PublishUpsert {
  id: string;
  /** The entry JSON (shared/snapshot-entry.ts). */
  entry: string;
  /** `publishedValues(entry)`: what the heartbeat's significance filter compares against. */
  values: string;
  /** The stamp the flush read (`NodeRead.stamp`); '' for an entry not read from a record. */
  stamp: string;
}

export interface PublishBatch {
  /** Server time of the publish, ms (the delta's `at`). */
  at: number;
  /** Approximate MAXLEN of the delta stream. */
  streamCap: number;
  /**
   * SB_LOAD_CHANGE_THRESHOLD: an upsert changed since its read is dirty again only when its
   * current state differs from what is published by more (the heartbeat's significance filter).
   */
  loadChangeThreshold: number;
  upserts: PublishUpsert[];
  /** Ids whose record is gone or removed. */
  removals: string[];
}

export interface PublishResult {
  /** The shard version after the call (unchanged when nothing was published). */
  version: number;
  /** Upserts whose record changed since the flush read it: put back in the dirty set. */
  redirtied: number;
  /** The dirty set was empty before them: a flush must be requested. */
  dirtyWasEmpty: boolean;
}

const ENTRY_COUNT = ENTRY_FIELDS.length;
const READ_FIELDS = [
  ...ENTRY_FIELDS,
  ...STAMP_FIELDS.filter((f) => !(ENTRY_FIELDS as readonly string[]).includes(f)),
];
const STAMP_AT = STAMP_FIELDS.map((f) => READ_FIELDS.indexOf(f));

export class SnapshotStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
  ) {}

  /** `takeDirty-2.lua`: up to `batchSize` dirty nodes into the taken set, or a crashed flush's batch. */
  async takeDirty(shard: number, batchSize: number): Promise<DirtyBatch> {
    const k = this.keys.shard(shard);
    const [recovered, remaining, ...ids] = await this.redis.takeDirty(k.dirty, k.dirtyTaken, batchSize);
    return { recovered: Number(recovered) === 1, remaining: Number(remaining), ids: ids.map(String) };
  }

  /** Each node's entry fields and stamp, and its previously published values: one pipeline. */
  async readNodes(shard: number, ids: string[]): Promise<NodeRead[]> {
    if (ids.length === 0) return [];
    const k = this.keys.shard(shard);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(k.node(id), ...READ_FIELDS);
    pipeline.hmget(k.published, ...ids);
    const rows = (await pipeline.exec()) ?? [];
    const [pubErr, pub] = rows[ids.length] ?? [new Error('no reply'), null];
    if (pubErr) throw pubErr;
    const previous = pub as (string | null)[];
    return ids.map((id, i) => {
      const [err, reply] = rows[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      const values = reply as (string | null)[];
      return {
        id,
        values: values.slice(0, ENTRY_COUNT),
        stamp: STAMP_AT.map((at) => values[at] ?? '').join('|'),
        previous: previous[i] ?? null,
      };
    });
  }

  /**
   * `publishSnapshot-6+.lua`: entries, published values, version + 1 and one delta, the taken
   * batch released; upserts changed since their read go back to the dirty set. `via` queues
   * the call on a MULTI or pipeline instead (its reply is then `parsePublish`'s input).
   */
  async publish(shard: number, batch: PublishBatch): Promise<PublishResult> {
    const [numKeys, ...rest] = this.publishCommand(shard, batch);
    return parsePublish(await this.redis.publishSnapshot(numKeys as number, ...rest));
  }

  /** Queues the publish on a MULTI or pipeline (tests: several versions atomically). */
  queuePublish(via: ChainableCommander, shard: number, batch: PublishBatch): ChainableCommander {
    const [numKeys, ...rest] = this.publishCommand(shard, batch);
    return via.publishSnapshot(numKeys as number, ...rest);
  }

  private publishCommand(shard: number, batch: PublishBatch): (string | number)[] {
    const k = this.keys.shard(shard);
    const keys = [
      k.checkpoint,
      k.version,
      k.deltas,
      k.dirtyTaken,
      k.published,
      k.dirty,
      ...batch.upserts.map((u) => k.node(u.id)),
    ];
    return [
      keys.length,
      ...keys,
      batch.at,
      batch.streamCap,
      batch.loadChangeThreshold,
      batch.upserts.length,
      ...batch.upserts.flatMap((u) => [u.id, u.entry, u.values, u.stamp]),
      ...batch.removals,
    ];
  }
}

/** Names `publishSnapshot-6+.lua`'s reply `{ version, redirtied, dirty was empty }`. */
export function parsePublish(reply: unknown): PublishResult {
  const [version, redirtied, dirtyWasEmpty] = (reply as (number | string)[]).map(Number);
  return { version: version ?? 0, redirtied: redirtied ?? 0, dirtyWasEmpty: dirtyWasEmpty === 1 };
}

/** An upsert of an entry built elsewhere (not read from a record: no stamp to check). */
export function upsertOf(entry: SnapshotEntry, stamp = ''): PublishUpsert {
  return { id: entry.id, entry: JSON.stringify(entry), values: publishedValues(entry), stamp };
}
