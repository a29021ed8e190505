import type { ChainableCommander } from 'ioredis';
import type { KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';
import { encodeEntry, ENTRY_FIELDS, publishedValues, type SnapshotEntry } from '../snapshot-entry.ts';

/**
 * The snapshot's consistency domain in Redis (issue 12 deliverable 1): the ONE place that builds
 * the keys of the dirty set → flush → checkpoint/delta pipeline, packs the arguments of
 * `takeDirty-2.lua` and `publishSnapshot-8+.lua` from named fields and names their replies.
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
  /** The node's published values (its record's `pub`) before this flush, or null. */
  previous: string | null;
}

export interface PublishUpsert {
  id: string;
  /** The entry in its checkpoint form (shared/snapshot-entry.ts encodeEntry). */
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
   * Oldest version the delta stream must keep (approximate MINID), 0 for no time bound: the
   * flush passes the newest version it published at least SB_DELTA_WINDOW_MS ago.
   */
  keepFromVersion?: number;
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

/** The entry values that are capability blobs, and the node hash field naming each one's digest. */
const BLOB_DIGESTS: Partial<Record<(typeof ENTRY_FIELDS)[number], string>> = {
  cap_svc: 'dg_svc',
  cap_static: 'dg_static',
  cap_lang: 'dg_lang',
};
const BLOB_AT = ENTRY_FIELDS.flatMap((f, i) => (BLOB_DIGESTS[f] ? [i] : []));
/** HMGET of a node: ENTRY_FIELDS with digests for blobs, then the blobs of a record of the old
 * layout (inside the hash: until its next heartbeat migrates it), the stamp fields, and the
 * published values. */
const READ_FIELDS = [
  ...ENTRY_FIELDS.map((f) => BLOB_DIGESTS[f] ?? f),
  ...BLOB_AT.map((i) => ENTRY_FIELDS[i]!),
  ...STAMP_FIELDS.filter((f) => !(ENTRY_FIELDS as readonly string[]).includes(f)),
  'pub',
];
const ENTRY_COUNT = ENTRY_FIELDS.length;
const STAMP_AT = STAMP_FIELDS.map((f) => READ_FIELDS.indexOf(f));
const PUB_AT = READ_FIELDS.length - 1;
/** Rereads of a node whose digest's blob vanished between the two reads (it changed meanwhile). */
const BLOB_REREADS = 3;
const BLOB_CACHE_MAX = 4096;

export class SnapshotStore {
  /** digest → blob: content-addressed, so never stale (bounded: cleared when full). */
  private readonly blobs = new Map<string, string>();

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

  /**
   * Each node's entry fields (its capability blobs resolved from the shard's caps hash, through
   * this store's cache) and stamp, and its previously published values (the record's `pub`, or
   * for a record published before they moved there and not heartbeated since, the shard's old
   * `:pub` hash): one pipeline, and one HMGET of the caps hash for digests not seen before.
   */
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
    const reads = ids.map((id, i) => {
      const [err, reply] = rows[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      return { id, raw: reply as (string | null)[], previous: previous[i] ?? null };
    });
    let pending = reads;
    for (let round = 0; ; round++) {
      pending = await this.resolveBlobs(k.caps, pending);
      if (pending.length === 0 || round === BLOB_REREADS) break;
      // their blob went between the two reads: the node changed parts meanwhile, read it again
      const again = this.redis.pipeline();
      for (const r of pending) again.hmget(k.node(r.id), ...READ_FIELDS);
      const replies = (await again.exec()) ?? [];
      pending.forEach((r, i) => {
        const [err, reply] = replies[i] ?? [new Error('no reply'), null];
        if (err) throw err;
        r.raw = reply as (string | null)[];
      });
    }
    return reads.map(({ id, raw, previous }) => ({
      id,
      values: raw.slice(0, ENTRY_COUNT),
      stamp: STAMP_AT.map((at) => raw[at] ?? '').join('|'),
      previous: raw[PUB_AT] ?? previous,
    }));
  }

  /**
   * Replaces each read's digests by their blobs (a blob held in the record itself, old layout,
   * first); returns the reads whose blob the caps hash no longer has (left as null).
   */
  private async resolveBlobs<R extends { raw: (string | null)[] }>(
    capsKey: string,
    reads: R[],
  ): Promise<R[]> {
    const unknown = new Set<string>();
    for (const { raw } of reads) {
      BLOB_AT.forEach((at, j) => {
        const digest = raw[at];
        if (raw[ENTRY_COUNT + j] == null && digest && !this.blobs.has(digest)) unknown.add(digest);
      });
    }
    if (unknown.size > 0) {
      const wanted = [...unknown];
      const found = await this.redis.hmget(capsKey, ...wanted);
      if (this.blobs.size + wanted.length > BLOB_CACHE_MAX) this.blobs.clear();
      wanted.forEach((digest, i) => {
        const blob = found[i];
        if (blob != null) this.blobs.set(digest, blob);
      });
    }
    const missing: R[] = [];
    for (const r of reads) {
      const { raw } = r;
      let lost = false;
      BLOB_AT.forEach((at, j) => {
        const legacy = raw[ENTRY_COUNT + j];
        const digest = raw[at];
        if (legacy != null) raw[at] = legacy;
        else if (digest) {
          const blob = this.blobs.get(digest);
          if (blob === undefined) lost = true;
          raw[at] = blob ?? null;
        }
      });
      if (lost) missing.push(r);
    }
    return missing;
  }

  /**
   * `publishSnapshot-8+.lua`: entries, published values, version + 1 and one delta, the taken
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
      k.caps,
      k.capRefs,
      ...batch.upserts.map((u) => k.node(u.id)),
    ];
    return [
      keys.length,
      ...keys,
      batch.at,
      batch.streamCap,
      batch.loadChangeThreshold,
      batch.keepFromVersion ?? 0,
      batch.upserts.length,
      ...batch.upserts.flatMap((u) => [u.id, u.entry, u.values, u.stamp]),
      ...batch.removals,
    ];
  }
}

/** Names `publishSnapshot-8+.lua`'s reply `{ version, redirtied, dirty was empty }`. */
export function parsePublish(reply: unknown): PublishResult {
  const [version, redirtied, dirtyWasEmpty] = (reply as (number | string)[]).map(Number);
  return { version: version ?? 0, redirtied: redirtied ?? 0, dirtyWasEmpty: dirtyWasEmpty === 1 };
}

/** An upsert of an entry built elsewhere (not read from a record: no stamp to check). */
export function upsertOf(entry: SnapshotEntry, stamp = ''): PublishUpsert {
  return { id: entry.id, entry: encodeEntry(entry), values: publishedValues(entry), stamp };
}

/**
 * The slot recount's reads and its one script (`reconcileNode-3.lua`), for the liveness tick's
 * spread-out reconciliation (services/worker/slot-recount.ts).
 */
export class SlotCountStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
  ) {}

  /** The shard's registered nodes: each is in exactly one of `:live` and `:offline`. */
  async nodeCount(shard: number): Promise<number> {
    const k = this.keys.shard(shard);
    const [live, offline] = await Promise.all([this.redis.zcard(k.live), this.redis.zcard(k.offline)]);
    return live + offline;
  }

  /**
   * One step of a pass over the shard's nodes: ZSCAN of `:live`, then of `:offline` (the step
   * that finishes `:live` goes on into `:offline`). Returns the next cursor ('0' = the pass is
   * over; `L…` / `O…` say which set it continues in) and some ids (a node moving between the
   * two meanwhile may be missed or seen twice by a pass).
   */
  async scanNodes(shard: number, cursor: string, count: number): Promise<{ cursor: string; ids: string[] }> {
    const k = this.keys.shard(shard);
    const step = async (key: string, from: string) => {
      const [next, flat] = await this.redis.zscan(key, from, 'COUNT', count);
      return { next, ids: flat.filter((_, i) => i % 2 === 0) };
    };
    if (!cursor.startsWith('O')) {
      const live = await step(k.live, cursor === '0' ? '0' : cursor.slice(1));
      if (live.next !== '0') return { cursor: `L${live.next}`, ids: live.ids };
      const offline = await step(k.offline, '0');
      return { cursor: offline.next === '0' ? '0' : `O${offline.next}`, ids: [...live.ids, ...offline.ids] };
    }
    const offline = await step(k.offline, cursor.slice(1));
    return { cursor: offline.next === '0' ? '0' : `O${offline.next}`, ids: offline.ids };
  }

  /**
   * Per node, the reservations and running jobs the shard holds for it (members of `:resv` and
   * `:run`, "<job>|<node>|<attempt>…"). O(jobs in flight on the shard); nothing read when none.
   */
  async heldSlots(shard: number): Promise<Map<string, { reserved: number; committed: number }>> {
    const k = this.keys.shard(shard);
    const held = new Map<string, { reserved: number; committed: number }>();
    const [resv, run] = await Promise.all([this.redis.zcard(k.reservations), this.redis.zcard(k.running)]);
    const count = async (key: string, n: number, field: 'reserved' | 'committed') => {
      if (n === 0) return;
      for (const member of await this.redis.zrange(key, '0', '-1')) {
        const node = member.split('|', 2)[1] ?? '';
        const c = held.get(node) ?? { reserved: 0, committed: 0 };
        c[field]++;
        held.set(node, c);
      }
    };
    await count(k.reservations, resv, 'reserved');
    await count(k.running, run, 'committed');
    return held;
  }

  /** The `reserved` / `committed` counters of each node (0 when absent): one pipeline. */
  async slotCounters(shard: number, ids: string[]): Promise<{ reserved: number; committed: number }[]> {
    if (ids.length === 0) return [];
    const k = this.keys.shard(shard);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(k.node(id), 'reserved', 'committed');
    const rows = (await pipeline.exec()) ?? [];
    return ids.map((_, i) => {
      const [err, reply] = rows[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      const [reserved, committed] = (reply as (string | null)[]).map((v) => Number(v ?? 0) || 0);
      return { reserved: reserved ?? 0, committed: committed ?? 0 };
    });
  }

  /** `reconcileNode-3.lua`: recounts atomically and corrects; whether it corrected. */
  async reconcileNode(shard: number, id: string): Promise<boolean> {
    const k = this.keys.shard(shard);
    const [corrected] = await this.redis.reconcileNode(k.node(id), k.reservations, k.running, id);
    return corrected === 1;
  }
}

/** `removeNode-5.lua` (the liveness tick's retention), its arguments and reply named. */
export class RetentionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
  ) {}

  /**
   * Retires the node if it is offline since before `cutoffMs`: deletes its record (releasing its
   * capability blob references) and marks it dirty (the flush publishes the removal); whether it did.
   */
  async removeNode(
    shard: number,
    nodeId: string,
    cutoffMs: number,
  ): Promise<{ removed: boolean; dirtyWasEmpty: boolean }> {
    const k = this.keys.shard(shard);
    const [code, dirtyWasEmpty] = await this.redis.removeNode(
      k.node(nodeId),
      k.offline,
      k.dirty,
      k.caps,
      k.capRefs,
      nodeId,
      cutoffMs,
    );
    return { removed: code === 1, dirtyWasEmpty: dirtyWasEmpty === 1 };
  }
}
