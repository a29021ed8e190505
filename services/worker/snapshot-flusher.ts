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
  /** Dirty nodes left for the next flush (already enqueued). */
  remaining: number;
  /** Nodes changed (a heartbeat) between the read and the publish: dirty again (already enqueued). */
  redirtied: number;
}

export interface FlushOptions {
  batchSize: number;
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
 * Publishes a shard's dirty nodes as ONE new snapshot version: take a batch of the dirty set
 * (crash-safe), read those nodes' current state, publish entries + delta in one script.
 * Costs O(dirty nodes), never O(fleet); a node that heartbeated 50 times appears once.
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

  flush(shard: number): Promise<FlushResult> {
    // a snapshot-flush job taken from its queue: where the work enters this process
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
    // nodes left behind, or changed since they were read (put back in the dirty set)
    if (remaining > 0 || redirtied > 0) await this.queues.requestFlush(shard, 0);
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
