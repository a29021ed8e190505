import { Cluster } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import type { RedisClient } from '../../shared/redis-client.ts';

type Send = (frame: string) => void;

/**
 * Pushes job_assign to the nodes whose sockets this gateway holds. Every reservation also
 * appends (node, frame) to its shard's assignment feed; each gateway tails the feeds and sends
 * the frames of its own nodes. Delivery is at least once: an assignment stays in the node's
 * inbox until the node acks it, and the inbox is replayed on every registration (and returned
 * with every HTTP heartbeat), so a node that missed one gets it again; nodes deduplicate by
 * (job_id, attempt_id).
 *
 * Standalone: one XREAD BLOCK over every shard's feed. Cluster: a multi-key XREAD across slots
 * is CROSSSLOT, so one reader (connection) per shard.
 */
export class AssignmentFeed {
  private readonly local = new Map<string, Send>();
  private readonly readers: RedisClient[] = [];
  private closed = false;
  private loops: Promise<void>[] = [];

  constructor(
    /** Request-path client (fail fast) for inbox reads. */
    private readonly redis: RedisClient,
    /** Blocking-mode client; duplicated into the feed readers. */
    private readonly tailClient: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly log: Logger,
    private readonly blockMs = 1000,
  ) {}

  attach(nodeId: string, send: Send): void {
    this.local.set(nodeId, send);
  }

  /** Detaches only if `send` is still the node's current socket (it may have re-registered). */
  detach(nodeId: string, send: Send): void {
    if (this.local.get(nodeId) === send) this.local.delete(nodeId);
  }

  /** The assignments waiting in a node's inbox (not acked yet), oldest first. */
  async pending(nodeId: string, count = 100): Promise<string[]> {
    const entries = await this.redis.xrange(
      this.keys.forNode(nodeId).inbox(nodeId),
      '-',
      '+',
      'COUNT',
      count,
    );
    return entries.map(([, fields]) => fields[fields.indexOf('frame') + 1] ?? '').filter(Boolean);
  }

  async start(): Promise<void> {
    const shards = Array.from({ length: this.keys.shards }, (_, s) => s);
    const base = this.tailClient;
    const groups = base instanceof Cluster ? shards.map((s) => [s]) : [shards];
    for (const group of groups) {
      const reader: RedisClient = base instanceof Cluster ? base.duplicate() : base.duplicate();
      // without a listener ioredis prints "[ioredis] Unhandled error event" with a stack on every
      // retry; an unreachable Redis is the service's RedisReachability's to say
      let down = false;
      reader.on('error', (err: Error) => {
        if (!down && !this.closed)
          this.log.debug({ err: err.message, shards: group }, 'feed reader: redis error');
        down = true;
      });
      reader.on('ready', () => (down = false));
      this.readers.push(reader);
      // start from what exists now: earlier assignments are in the inboxes, replayed on register
      const ids = await Promise.all(group.map((s) => this.lastId(reader, this.keys.shard(s).assignments)));
      this.loops.push(this.tail(reader, group, ids));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const reader of this.readers) reader.disconnect();
    await Promise.allSettled(this.loops);
  }

  private async lastId(reader: RedisClient, key: string): Promise<string> {
    const [last] = await reader.xrevrange(key, '+', '-', 'COUNT', 1);
    return last?.[0] ?? '0-0';
  }

  private async tail(reader: RedisClient, shards: number[], ids: string[]): Promise<void> {
    const keys = shards.map((s) => this.keys.shard(s).assignments);
    let failures = 0;
    while (!this.closed) {
      try {
        const reply = await reader.xread('COUNT', 500, 'BLOCK', this.blockMs, 'STREAMS', ...keys, ...ids);
        failures = 0;
        for (const [key, entries] of reply ?? []) {
          const at = keys.indexOf(key);
          for (const [id, fields] of entries) {
            ids[at] = id;
            const node = fields[fields.indexOf('node') + 1];
            const send = node === undefined ? undefined : this.local.get(node);
            if (send) send(fields[fields.indexOf('frame') + 1] ?? '');
          }
        }
      } catch (err) {
        if (this.closed) return;
        if (failures++ === 0)
          this.log.warn({ err: (err as Error).message }, 'assignment feed interrupted; retrying');
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** failures, 2000)));
      }
    }
  }
}
