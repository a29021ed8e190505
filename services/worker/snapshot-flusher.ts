import type { Span } from '@opentelemetry/api';
import type { KeyBuilder } from '../../shared/keys.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import { buildSnapshotEntry, ENTRY_FIELDS, publishedValues } from '../../shared/snapshot-entry.ts';
import { inSpan } from '../../shared/telemetry.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface FlushResult {
  version: number;
  upserts: number;
  removals: number;
  /** The batch was left by a flush that crashed. */
  recovered: boolean;
  /** Dirty nodes left for the next flush (already enqueued). */
  remaining: number;
}

export interface FlushOptions {
  batchSize: number;
  streamLength: number;
  /** Fault injection (crash tests): pause between taking the batch and publishing it. */
  pauseAfterTakeMs?: number;
}

/**
 * Publishes a shard's dirty nodes as ONE new snapshot version: take a batch of the dirty set
 * (crash-safe), read those nodes' current state, publish entries + delta in one script.
 * Costs O(dirty nodes), never O(fleet); a node that heartbeated 50 times appears once.
 */
export class SnapshotFlusher {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly queues: DerivedWorkQueues,
    private readonly metrics: WorkerMetrics,
    private readonly options: FlushOptions,
  ) {}

  flush(shard: number): Promise<FlushResult> {
    return inSpan('snapshot.flush', { 'sb.shard': shard }, async (span) => {
      const result = await this.flushIn(shard, span);
      span.setAttributes({
        'sb.version': result.version,
        'sb.upserts': result.upserts,
        'sb.removals': result.removals,
        'sb.recovered': result.recovered,
        'sb.remaining': result.remaining,
      });
      return result;
    });
  }

  private async flushIn(shard: number, span: Span): Promise<FlushResult> {
    const started = performance.now();
    const k = this.keys.shard(shard);
    const [recovered, remaining, ...ids] = await this.redis.takeDirty(
      k.dirty,
      k.dirtyTaken,
      this.options.batchSize,
    );
    const nodeIds = ids.map(String);
    span.setAttribute('sb.nodes', nodeIds.length);
    if (this.options.pauseAfterTakeMs) await new Promise((r) => setTimeout(r, this.options.pauseAfterTakeMs));

    const pipeline = this.redis.pipeline();
    for (const id of nodeIds) pipeline.hmget(k.node(id), ...ENTRY_FIELDS);
    if (nodeIds.length > 0) pipeline.hmget(k.published, ...nodeIds);
    const rows = nodeIds.length > 0 ? ((await pipeline.exec()) ?? []) : [];
    const previous = (rows[nodeIds.length]?.[1] ?? []) as (string | null)[];

    const now = Date.now();
    const args: (string | number)[] = [];
    const removals: string[] = [];
    let upserts = 0;
    nodeIds.forEach((id, i) => {
      const [err, values] = rows[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      const entry = buildSnapshotEntry(id, values as (string | null)[], now);
      if (entry === null) {
        removals.push(id);
        return;
      }
      args.push(id, JSON.stringify(entry), publishedValues(entry));
      upserts++;
      // pipeline lag of a change this publish is the first to show (not of a republish for a
      // reservation or drain): the change was received after the previous publish
      const previousAt = Number(previous[i]?.slice(previous[i].lastIndexOf('|') + 1) ?? 0);
      const changedAt = entry.changedAt ?? 0;
      if (changedAt > previousAt) this.metrics.lag.observe(Math.max(0, now - changedAt) / 1000);
    });

    const version = await this.redis.publishSnapshot(
      k.checkpoint,
      k.version,
      k.deltas,
      k.dirtyTaken,
      k.published,
      now,
      this.options.streamLength,
      upserts,
      ...args,
      ...removals,
    );
    if (Number(remaining) > 0) await this.queues.requestFlush(shard, 0);

    const published = upserts + removals.length;
    this.metrics.flushes.inc({
      outcome: recovered === 1 ? 'recovered' : published > 0 ? 'published' : 'empty',
    });
    if (published > 0) {
      this.metrics.deltaNodes.observe(published);
      this.metrics.publishedNodes.inc(published);
      this.metrics.version.set({ shard: String(shard) }, version);
    }
    this.metrics.flushSeconds.observe((performance.now() - started) / 1000);
    return {
      version,
      upserts,
      removals: removals.length,
      recovered: recovered === 1,
      remaining: Number(remaining),
    };
  }
}
