import { Cluster } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { LangBlobs } from './lang-blobs.ts';
import { decodeCheckpoint } from './checkpoint-load.ts';
import { createReader, type Reader } from './replica-reader.ts';
import {
  execResults,
  parseDelta,
  streamIdOf,
  toVersion,
  versionOfStreamId,
  type SnapshotDelta,
  type StreamEntry,
} from './snapshot-delta.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

/**
 * The selector's replica of the published snapshot
 * (ARCHITECTURE.md "The snapshot: flush and replica"):
 * load every shard's version + checkpoint + capability blobs atomically (MULTI GET ver + HGETALL
 * ckpt as a flat reply + HGETALL caps, one slot; decoded by checkpoint-load.ts), then tail the shards' delta streams with XREAD BLOCK after
 * `<version>-0`, applying each delta synchronously to the SnapshotIndex when its version is
 * exactly the shard's version + 1. Entries name their languages by digest (lang-blobs.ts): a
 * delta naming a digest not seen yet waits for one HMGET of the shard's caps hash; a blob gone
 * by then (the node has moved on in a later delta) reloads the shard.
 * A jump (version > current + 1, e.g. the stream was trimmed past us) or a malformed delta
 * reloads THAT shard alone; versions ≤ current are duplicates and skipped.
 *
 * Readers (one blocking connection each, duplicated from the client given):
 *  - standalone: ONE reader, one XREAD over every shard stream — one connection, one round trip
 *    wakes on any shard.
 *  - Cluster: one reader PER SHARD. A multi-key XREAD is CROSSSLOT even when the slots live on
 *    the same master, and a blocked connection can serve nothing else, so per-master grouping
 *    does not help; round-robin short BLOCKs would add up to shards × BLOCK of latency. Each
 *    reader is a `Cluster.duplicate()` so MOVED/failover/reconnect stay ioredis' job; its node
 *    connections are lazy and its ready check is off, so it holds exactly one socket, to the
 *    shard's master (test/cluster checks it): 16 shards ⇒ 16 sockets per selector.
 * Each reader runs one sequential loop (bootstrap → [verify] → XREAD → apply → reload gaps), so
 * a shard's reload and its deltas never interleave and need no locking.
 *
 * Verify: every `verifyMs` (and after any error or reconnect) a reader compares its shards with
 * Redis (MULTI GET ver + XRANGE of our successor): Redis behind us (data lost, FLUSH) or ahead
 * with our successor gone (trimmed while no newer delta arrived) ⇒ reload. This is also how a
 * replica recovers after an outage. Limit: Redis losing data and then climbing past our version
 * before we notice cannot be told apart from progress.
 */

export interface SnapshotReplicaOptions {
  /** XREAD BLOCK timeout, ms. Default 1000. */
  blockMs?: number;
  /** Deltas per stream per XREAD. Default 256. */
  count?: number;
  /** How often a reader checks its shards' versions against Redis, ms. Default: blockMs. */
  verifyMs?: number;
  log: Logger;
  /** Called after each applied delta (not after loads) with its upserts and publish time. */
  onApplied?: (shard: number, version: number, entries: readonly SnapshotEntry[], atMs: number) => void;
}

export interface ShardStatus {
  shard: number;
  version: number;
  nodes: number;
  /** now − publish time of the last applied delta, or − time of the last (re)load; null before. */
  age_ms: number | null;
}

export interface SnapshotReplicaStatus {
  ready: boolean;
  /** Shard reloads after bootstrap (gaps, jumps, resets, malformed deltas). */
  reloads: number;
  shards: ShardStatus[];
}

interface ShardState {
  version: number;
  /** ms; 0 until loaded. */
  at: number;
}

interface ParsedReply {
  ready: { shard: number; delta: SnapshotDelta }[];
  stale: Map<number, LoadReason>;
}

class ClosedError extends Error {
  override readonly name = 'ClosedError';
}

/** Why a shard is (re)loaded, and the stream version that showed it (0 when none). */
interface LoadReason {
  reason: string;
  seen: number;
}

const BOOTSTRAP: LoadReason = { reason: 'bootstrap', seen: 0 };
const backoffMs = (failures: number) => Math.min(100 * 2 ** Math.min(failures - 1, 5), 2000);

export class SnapshotReplica {
  private readonly state: ShardState[];
  private readonly streamShard = new Map<string, number>();
  private readonly langs = new LangBlobs();
  private readonly blockMs: number;
  private readonly count: number;
  private readonly verifyMs: number;
  private readonly log: Logger;
  private readers: Reader[] = [];
  private loops: Promise<void>[] = [];
  /** Rejecters of every awaited command/sleep: close() settles them at once. */
  private readonly aborters = new Set<() => void>();
  private started = false;
  private closed = false;
  private isReady = false;
  private reloads = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly index: SnapshotIndex,
    private readonly options: SnapshotReplicaOptions,
  ) {
    this.blockMs = Math.max(1, options.blockMs ?? 1000); // BLOCK 0 would block forever
    this.count = options.count ?? 256;
    this.verifyMs = options.verifyMs ?? this.blockMs;
    this.log = options.log;
    this.state = Array.from({ length: keys.shards }, () => ({ version: 0, at: 0 }));
    for (let shard = 0; shard < keys.shards; shard++) this.streamShard.set(keys.shard(shard).deltas, shard);
  }

  /** True once every shard has been loaded; stays true through later reloads. */
  get ready(): boolean {
    return this.isReady;
  }

  /**
   * Bootstraps every shard, then keeps tailing in the background. Resolves when all shards are
   * loaded (waiting for Redis if need be); rejects if closed before that.
   */
  async start(): Promise<void> {
    if (this.started || this.closed) throw new Error('SnapshotReplica already started or closed');
    this.started = true;
    const shards = Array.from({ length: this.keys.shards }, (_, shard) => shard);
    const groups = this.redis instanceof Cluster ? shards.map((shard) => [shard]) : [shards];
    this.readers = groups.map((group) => this.createReader(group));
    const booted = this.readers.map(
      (reader) =>
        new Promise<void>((resolve, reject) => {
          this.loops.push(this.run(reader, resolve, reject));
        }),
    );
    await Promise.all(booted);
    this.isReady = true;
    this.log.info({ shards: this.keys.shards, readers: this.readers.length }, 'snapshot replica ready');
  }

  /** One shard's version and age, O(1) (what every answer carries; status() walks the fleet). */
  shardState(shard: number): { version: number; ageMs: number } {
    const s = this.state[shard];
    return { version: s?.version ?? 0, ageMs: s && s.at !== 0 ? Math.max(0, Date.now() - s.at) : 0 };
  }

  status(): SnapshotReplicaStatus {
    const nodes = new Array<number>(this.keys.shards).fill(0);
    for (const node of this.index.all()) nodes[node.shard] = (nodes[node.shard] ?? 0) + 1;
    const now = Date.now();
    return {
      ready: this.isReady,
      reloads: this.reloads,
      shards: this.state.map(({ version, at }, shard) => ({
        shard,
        version,
        nodes: nodes[shard] ?? 0,
        age_ms: at === 0 ? null : Math.max(0, now - at),
      })),
    };
  }

  /** Stops the loops at once (pending reads are abandoned) and closes the reader connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const abort of [...this.aborters]) abort();
    for (const reader of this.readers) reader.conn.disconnect();
    await Promise.allSettled(this.loops);
  }

  private createReader(shards: number[]): Reader {
    return createReader(this.redis, shards, this.keys, this.log, () => this.closed);
  }

  private async run(reader: Reader, booted: () => void, failed: (err: Error) => void): Promise<void> {
    let loaded = false;
    let failures = 0;
    while (!this.closed) {
      try {
        if (!loaded) {
          await this.load(reader, new Map(reader.shards.map((shard) => [shard, BOOTSTRAP])));
          loaded = true;
          reader.lastVerify = Date.now();
          booted();
        } else if (reader.suspect || Date.now() - reader.lastVerify >= this.verifyMs) {
          await this.verify(reader);
        }
        const ids = reader.shards.map((shard) => streamIdOf(this.state[shard]!.version));
        const reply = await this.guard(
          reader.conn.xread('COUNT', this.count, 'BLOCK', this.blockMs, 'STREAMS', ...reader.streams, ...ids),
        );
        const parsed = this.parseReply(reply);
        await this.fetchLangs(reader, parsed.ready);
        const stale = this.applyParsed(parsed);
        if (stale.size > 0) {
          await this.load(reader, stale);
          // A consistent writer bumps ver with every XADD, so the reload covers what we saw;
          // if not, rereading would spin on the same entry: back off instead.
          for (const [shard, { seen }] of stale) {
            if (this.state[shard]!.version < seen) throw new Error(`shard ${shard}: stream ahead of ver`);
          }
        }
        if (failures > 0) this.log.info({ shards: reader.shards.length }, 'snapshot reader recovered');
        failures = 0;
      } catch (err) {
        if (this.closed) break;
        failures++;
        reader.suspect = true;
        if (failures === 1) {
          this.log.warn({ err: (err as Error).message, shards: reader.shards }, 'snapshot reader failing');
        }
        await this.sleep(backoffMs(failures)).catch(() => undefined);
      }
    }
    failed(new ClosedError('snapshot replica closed before bootstrap completed'));
  }

  /**
   * The deltas of an XREAD reply that follow each shard's version, parsed (nothing applied), and
   * the shards that need a reload instead (and why).
   */
  private parseReply(reply: [string, StreamEntry[]][] | null): ParsedReply {
    const stale = new Map<number, LoadReason>();
    const ready: { shard: number; delta: SnapshotDelta }[] = [];
    for (const [stream, entries] of reply ?? []) {
      const shard = this.streamShard.get(stream);
      if (shard === undefined) continue;
      let current = this.state[shard]!.version;
      for (const entry of entries) {
        const version = versionOfStreamId(entry[0]);
        if (version <= current) continue; // duplicate (already loaded)
        if (version !== current + 1) {
          stale.set(shard, { reason: `version jump ${current} → ${version}`, seen: version });
          break;
        }
        try {
          ready.push({ shard, delta: parseDelta(entry) });
        } catch (err) {
          stale.set(shard, { reason: (err as Error).message, seen: version });
          break;
        }
        current = version;
      }
    }
    return { ready, stale };
  }

  /** Reads the language blobs the parsed deltas name and this replica has not seen: one HMGET per shard. */
  private async fetchLangs(reader: Reader, ready: ParsedReply['ready']): Promise<void> {
    const wanted = new Map<number, Set<string>>();
    for (const { shard, delta } of ready) {
      for (const digest of this.langs.unknown(delta.byDigest)) {
        let set = wanted.get(shard);
        if (!set) wanted.set(shard, (set = new Set()));
        set.add(digest);
      }
    }
    if (wanted.size === 0) return;
    const shards = [...wanted.keys()];
    const replies = await this.guard(
      Promise.all(
        shards.map((shard) => reader.conn.hmget(this.keys.shard(shard).caps, ...wanted.get(shard)!)),
      ),
    );
    shards.forEach((shard, i) => {
      const digests = [...wanted.get(shard)!];
      replies[i]!.forEach((blob, j) => {
        if (blob !== null) this.langs.learn(digests[j]!, blob);
      });
    });
  }

  /**
   * Applies the parsed deltas in order; returns the shards that need a reload (and why).
   * Synchronous: a selection never sees half a delta.
   */
  private applyParsed({ ready, stale }: ParsedReply): Map<number, LoadReason> {
    for (const { shard, delta } of ready) {
      if (stale.has(shard)) continue; // reloaded whole: the rest of its deltas with it
      if (!delta.byDigest.every((e) => this.langs.attach(e))) {
        stale.set(shard, { reason: `delta ${delta.version}: a language blob is gone`, seen: delta.version });
        continue;
      }
      this.apply(shard, delta);
    }
    return stale;
  }

  private apply(shard: number, delta: SnapshotDelta): void {
    for (const entry of delta.upserts) this.index.upsert(entry, shard);
    for (const id of delta.removals) this.index.remove(id);
    const state = this.state[shard]!;
    state.version = delta.version;
    state.at = delta.at;
    try {
      this.options.onApplied?.(shard, delta.version, delta.upserts, delta.at);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'snapshot onApplied callback threw');
    }
  }

  /** Atomic read of version + checkpoint per shard, then replaceShard of each. */
  private async load(reader: Reader, why: Map<number, LoadReason>): Promise<void> {
    const shards = [...why.keys()];
    const replies = await this.guard(
      Promise.all(
        shards.map((shard) => {
          const k = this.keys.shard(shard);
          // HGETALL through `call`: the flat [id, value, …] reply, not ioredis' object (~5 µs per entry at 100,000)
          return reader.conn.multi().get(k.version).call('HGETALL', k.checkpoint).hgetall(k.caps).exec();
        }),
      ),
    );
    const loaded = shards.map((shard, i) => {
      const [version, checkpoint, caps] = execResults(replies[i]);
      const { entries, malformed, noLang } = decodeCheckpoint(checkpoint, caps, this.langs);
      if (malformed > 0) this.log.error({ shard, malformed }, 'malformed checkpoint entries skipped');
      if (noLang > 0)
        this.log.error({ shard, entries: noLang }, 'checkpoint entries name a language blob the shard lacks');
      return { shard, version: toVersion(version), entries };
    });
    const now = Date.now();
    for (const { shard, version, entries } of loaded) {
      const state = this.state[shard]!;
      this.index.replaceShard(shard, entries);
      const reason = why.get(shard) ?? BOOTSTRAP;
      if (reason !== BOOTSTRAP) {
        this.reloads++;
        this.log.info(
          { shard, from: state.version, to: version, nodes: entries.length, reason: reason.reason },
          'snapshot shard reloaded',
        );
      }
      state.version = version;
      state.at = now;
    }
  }

  /** Reloads the shards whose stream can no longer bring them up to Redis' version. */
  private async verify(reader: Reader): Promise<void> {
    reader.suspect = false;
    const versions = reader.shards.map((shard) => this.state[shard]!.version);
    const replies = await this.guard(
      Promise.all(
        reader.shards.map((shard, i) => {
          const k = this.keys.shard(shard);
          const next = streamIdOf(versions[i]! + 1);
          return reader.conn.multi().get(k.version).xrange(k.deltas, next, next).exec();
        }),
      ),
    );
    reader.lastVerify = Date.now();
    const stale = new Map<number, LoadReason>();
    reader.shards.forEach((shard, i) => {
      const [raw, successor] = execResults(replies[i]);
      const ours = versions[i]!;
      const theirs = toVersion(raw);
      if (theirs < ours) stale.set(shard, { reason: `redis version ${theirs} behind ours ${ours}`, seen: 0 });
      else if (theirs > ours && Array.isArray(successor) && successor.length === 0) {
        stale.set(shard, { reason: `delta ${ours + 1} missing, redis at ${theirs}`, seen: 0 });
      }
    });
    if (stale.size > 0) await this.load(reader, stale);
  }

  /** `promise`, or a ClosedError as soon as close() is called. */
  private guard<T>(promise: Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClosedError('closed'));
    return new Promise<T>((resolve, reject) => {
      const abort = () => reject(new ClosedError('closed'));
      this.aborters.add(abort);
      void promise.then(resolve, reject).finally(() => this.aborters.delete(abort));
    });
  }

  private sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return this.guard(new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))).finally(() =>
      clearTimeout(timer),
    );
  }
}
