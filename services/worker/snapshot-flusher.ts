import type { Span } from '@opentelemetry/api';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import { buildSnapshotEntry, encodeEntry, publishedValues } from '../../shared/snapshot-entry.ts';
import type { PublishUpsert, SnapshotStore } from '../../shared/store/snapshot.ts';
import { inSpan, SpanKind } from '../../shared/telemetry.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface FlushResult {
  version: number;
  upserts: number;
  removals: number;
  /** The batch was left by a flush that crashed. */
  recovered: boolean;
  /** Dirty nodes left for the next round. */
  remaining: number;
  /** Nodes changed (a heartbeat) between the read and the publish: dirty again for the next round. */
  redirtied: number;
}

/** What one snapshot-flush job did: its rounds (one delta each, at most) summed. */
export interface FlushJobResult extends FlushResult {
  /** Rounds run by this job (take → read → publish), each a FlushResult of its own. */
  rounds: number;
}

export interface FlushOptions {
  batchSize: number;
  /**
   * SB_FLUSH_DELAY_MS: a job that published waits this long, then flushes its shard again if
   * nodes were dirtied meanwhile (the coalescing window a new job's delay gives).
   */
  delayMs: number;
  /**
   * How long one job keeps flushing its shard before it hands over to a new job (one BullMQ job
   * for many deltas while the shard stays busy; the queue's lock and stall checks still apply).
   */
  holdMs: number;
  streamLength: number;
  /** SB_LOAD_CHANGE_THRESHOLD (the heartbeat's significance filter) */
  loadChangeThreshold: number;
  /** SB_DELTA_WINDOW_MS: about how much time of deltas a shard's stream keeps. */
  deltaWindowMs: number;
  /**
   * Fault injection (crash and race tests): awaited between reading the batch's nodes and
   * publishing them (`SB_FAULT_FLUSH_PAUSE_MS` makes it a sleep).
   */
  pauseAfterRead?: (shard: number) => Promise<void>;
}

/**
 * Publishes a shard's dirty nodes as ONE new snapshot version per round: take a batch of the
 * dirty set (crash-safe), read those nodes' current state, publish entries + delta in one
 * script. Costs O(dirty nodes), never O(fleet); a node that heartbeated 50 times appears once.
 *
 * A job keeps its shard while the shard stays busy (issue 13: the BullMQ job per delta — its
 * move to active and to finished, the delayed add, the wake-up — was a large part of the
 * worker's CPU per delta): it waits SB_FLUSH_DELAY_MS before its first round and after each
 * round that published, and runs another round if nodes were dirtied meanwhile,
 * for up to `holdMs`; at once while nodes are left behind or were put back. A round that finds
 * the dirty set empty ends the job; the gateway enqueues the next one when a node is dirtied
 * (`keepLastIfActive`: it starts after this one, never beside it). A job that stops holding a
 * non-empty dirty set asks for its successor itself.
 */
export class SnapshotFlusher {
  constructor(
    private readonly store: SnapshotStore,
    private readonly queues: DerivedWorkQueues,
    private readonly metrics: WorkerMetrics,
    private readonly options: FlushOptions,
  ) {}

  /** Per shard, the versions this process published within about the delta window, oldest first. */
  private readonly publishes = new Map<number, { version: number; at: number }[]>();

  /**
   * The newest version this process published at least the window ago: every version before it
   * was published earlier still (whichever worker published it), so the stream may drop them.
   * 0 while it knows none (just started): the entry cap alone bounds the stream.
   */
  private keepFrom(shard: number, now: number): number {
    const list = this.publishes.get(shard);
    if (!list) return 0;
    const cutoff = now - this.options.deltaWindowMs;
    while (list.length > 1 && list[1]!.at <= cutoff) list.shift();
    return list[0] !== undefined && list[0].at <= cutoff ? list[0].version : 0;
  }

  private remember(shard: number, version: number, at: number): void {
    let list = this.publishes.get(shard);
    if (!list) this.publishes.set(shard, (list = []));
    list.push({ version, at });
  }

  /**
   * One snapshot-flush job: waits SB_FLUSH_DELAY_MS (the job is not delayed in BullMQ), then
   * rounds while the shard stays busy, up to `holdMs`.
   */
  async flushJob(shard: number): Promise<FlushJobResult> {
    const started = performance.now();
    await sleep(this.options.delayMs); // nodes dirtied meanwhile ride along
    const total: FlushJobResult = {
      version: 0,
      upserts: 0,
      removals: 0,
      recovered: false,
      remaining: 0,
      redirtied: 0,
      rounds: 0,
    };
    for (;;) {
      const r = await this.flush(shard);
      total.rounds++;
      total.version = Math.max(total.version, r.version);
      total.upserts += r.upserts;
      total.removals += r.removals;
      total.recovered ||= r.recovered;
      total.redirtied += r.redirtied;
      total.remaining = r.remaining;
      const published = r.upserts + r.removals;
      const more = r.remaining > 0 || r.redirtied > 0;
      if (!more && published === 0) return total;
      if (performance.now() - started + (more ? 0 : this.options.delayMs) > this.options.holdMs) {
        // handing over: the dirty set may not go empty -> non-empty again, so nobody else asks
        await this.queues.requestFlush(shard);
        return total;
      }
      if (!more) await sleep(this.options.delayMs);
    }
  }

  /** One round: take, read, publish (one delta at most). */
  flush(shard: number): Promise<FlushResult> {
    // a round of a snapshot-flush job taken from its queue: where the work enters this process
    return inSpan(
      'snapshot.flush',
      { 'sb.shard': shard },
      async (span) => {
        const result = await this.flushIn(shard, span);
        span.setAttributes({
          'sb.version': result.version,
          'sb.upserts': result.upserts,
          'sb.removals': result.removals,
          'sb.recovered': result.recovered,
          'sb.remaining': result.remaining,
        });
        return result;
      },
      undefined,
      SpanKind.CONSUMER,
    );
  }

  private async flushIn(shard: number, span: Span): Promise<FlushResult> {
    const started = performance.now();
    const { recovered, remaining, ids } = await this.store.takeDirty(shard, this.options.batchSize);
    span.setAttribute('sb.nodes', ids.length);
    const nodes = await this.store.readNodes(shard, ids);
    // fault injection: between reading the nodes and publishing them (crash and race tests)
    await this.options.pauseAfterRead?.(shard);

    const now = Date.now();
    const upserts: PublishUpsert[] = [];
    const removals: string[] = [];
    for (const node of nodes) {
      const entry = buildSnapshotEntry(node.id, node.values, now);
      if (entry === null) {
        removals.push(node.id);
        continue;
      }
      upserts.push({
        id: node.id,
        entry: encodeEntry(entry),
        values: publishedValues(entry),
        stamp: node.stamp,
      });
      // pipeline lag of a change this publish is the first to show (not of a republish for a
      // reservation or drain): the change was received after the previous publish
      const previousAt = Number(node.previous?.slice(node.previous.lastIndexOf('|') + 1) ?? 0);
      const changedAt = entry.changedAt ?? 0;
      if (changedAt > previousAt) this.metrics.lag.observe(Math.max(0, now - changedAt) / 1000);
    }

    const { version, redirtied } = await this.store.publish(shard, {
      at: now,
      streamCap: this.options.streamLength,
      loadChangeThreshold: this.options.loadChangeThreshold,
      keepFromVersion: this.keepFrom(shard, now),
      upserts,
      removals,
    });
    if (upserts.length + removals.length > 0) this.remember(shard, version, now);
    // nodes left behind, or changed since they were read (put back in the dirty set): the job
    // runs another round at once (flushJob)
    if (redirtied > 0) this.metrics.redirtied.inc(redirtied);

    const published = upserts.length + removals.length;
    this.metrics.flushes.inc({
      outcome: recovered ? 'recovered' : published > 0 ? 'published' : 'empty',
    });
    if (published > 0) {
      this.metrics.deltaNodes.observe(published);
      this.metrics.publishedNodes.inc(published);
      this.metrics.version.set({ shard: String(shard) }, version);
    }
    this.metrics.flushSeconds.observe((performance.now() - started) / 1000);
    return { version, upserts: upserts.length, removals: removals.length, recovered, remaining, redirtied };
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
