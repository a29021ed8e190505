import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { createSubscriberConnection, type RedisClient } from '../redis-client.ts';
import type { RedisReachability } from '../redis-reachability.ts';

/** Where sharded pub/sub channels are served, and connections to there. */
export interface SubscriberTopology {
  /** The node that serves `channel` now (`standalone`, or a Cluster master's `host:port`); null while unknown. */
  ownerOf(channel: string): string | null;
  /** A new subscriber connection to `node`. */
  connect(node: string): Redis;
  /** Asks for a fresh view of who serves what (Cluster: a slots refresh); `onChange` hears of it. */
  refresh(): void;
  onChange(listener: () => void): void;
}

/**
 * The topology of the service's own Redis: one connection to a standalone server, or one per
 * Cluster master that serves a channel (SSUBSCRIBE must reach the master of the channel's slot),
 * following the Cluster client's slot map.
 */
export function redisTopology(
  config: Config,
  client: RedisClient,
  log: Logger,
  name: string,
  reachability?: RedisReachability,
): SubscriberTopology {
  if (!config.redis.clusterNodes) {
    return {
      ownerOf: () => 'standalone',
      connect: () =>
        createSubscriberConnection(config, log, { name, ...(reachability ? { reachability } : {}) }),
      refresh: () => undefined,
      onChange: () => undefined,
    };
  }
  const cluster = client as Cluster;
  return {
    ownerOf: (channel) => cluster.slots[keySlot(channel)]?.[0] ?? null,
    // one outage report per master connection: a failed-over master's stays down for good
    connect: (node) => createSubscriberConnection(config, log, { name: `${name}:${node}`, node }),
    refresh: () => cluster.refreshSlotsCache(),
    onChange: (listener) => void cluster.on('refresh', listener),
  };
}

interface Connection {
  readonly node: string;
  readonly redis: Redis;
  /** channels (by index) this connection is subscribed to now */
  readonly live: Set<number>;
  readonly pending: Set<number>;
  /** + 1 on every loss of the connection's subscriptions: late replies of an older one are ignored */
  epoch: number;
}

export interface ShardSubscriberHandlers {
  message(channel: string, message: string): void;
  /** Channel `index` is subscribed (again): anything published before may have been missed. */
  subscribed(index: number): void;
}

/**
 * Keeps ONE sharded subscription (SSUBSCRIBE) per channel, on the node that serves it, through
 * reconnects, failovers and slot moves: it subscribes again on every `ready`, after a `moved`
 * (an unsolicited SUNSUBSCRIBE: the slot left that node), whenever the slot map changes, and at
 * every check (`checkMs`) for any channel not subscribed; `subscribed(i)` says when channel i
 * is live again, so its owner can re-read what it may have missed.
 */
export class ShardSubscriber {
  private readonly connections = new Map<string, Connection>();
  private readonly assigned: (string | null)[];
  private unsubscribedLastCheck = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly topology: SubscriberTopology,
    private readonly channels: readonly string[],
    private readonly handlers: ShardSubscriberHandlers,
    private readonly log: Logger,
    private readonly checkMs: number,
  ) {
    this.assigned = channels.map(() => null);
  }

  start(): void {
    this.topology.onChange(() => this.reconcile());
    this.reconcile();
    this.timer = setInterval(() => this.check(), this.checkMs);
    this.timer.unref();
  }

  /** Channels subscribed now. */
  get subscribedCount(): number {
    let n = 0;
    for (const c of this.connections.values()) n += c.live.size;
    return n;
  }

  isSubscribed(index: number): boolean {
    const node = this.assigned[index];
    return node !== null && node !== undefined && this.connections.get(node)?.live.has(index) === true;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const c of this.connections.values()) c.redis.disconnect();
    this.connections.clear();
  }

  private check(): void {
    const missing = this.channels.some((_, i) => !this.isSubscribed(i));
    // missing twice in a row: the slot map may be wrong (a failover, a moved slot)
    if (missing && this.unsubscribedLastCheck) this.topology.refresh();
    this.unsubscribedLastCheck = missing;
    this.reconcile();
  }

  private reconcile(): void {
    if (this.closed) return;
    for (let i = 0; i < this.channels.length; i++) {
      const want = this.topology.ownerOf(this.channels[i]!);
      const current = this.assigned[i] ?? null;
      if (current !== null && current !== want) this.release(i, current);
      if (want === null) continue;
      this.assigned[i] = want;
      this.subscribe(this.connections.get(want) ?? this.open(want), i);
    }
    for (const [node, c] of this.connections) {
      if (this.assigned.includes(node)) continue;
      c.redis.disconnect();
      this.connections.delete(node);
    }
  }

  private open(node: string): Connection {
    const redis = this.topology.connect(node);
    const c: Connection = { node, redis, live: new Set(), pending: new Set(), epoch: 0 };
    const lost = () => {
      c.epoch++;
      c.live.clear();
      c.pending.clear();
    };
    redis.on('smessage', (channel: string, message: string) => this.handlers.message(channel, message));
    redis.on('close', lost);
    redis.on('ready', () => this.reconcile());
    redis.on('moved', () => {
      lost();
      this.topology.refresh();
      this.reconcile();
    });
    this.connections.set(node, c);
    return c;
  }

  private subscribe(c: Connection, index: number): void {
    if (c.live.has(index) || c.pending.has(index) || c.redis.status !== 'ready') return;
    c.pending.add(index);
    const epoch = c.epoch;
    const current = () => !this.closed && c.epoch === epoch && this.connections.get(c.node) === c;
    c.redis.ssubscribe(this.channels[index]!).then(
      () => {
        if (!current() || !c.pending.delete(index) || this.assigned[index] !== c.node) return;
        c.live.add(index);
        this.handlers.subscribed(index);
      },
      (err: unknown) => {
        if (current()) c.pending.delete(index); // the next check tries again
        this.log.debug({ err, channel: this.channels[index] }, 'SSUBSCRIBE failed');
      },
    );
  }

  private release(index: number, node: string): void {
    this.assigned[index] = null;
    const c = this.connections.get(node);
    if (!c) return;
    c.pending.delete(index);
    if (c.live.delete(index) && c.redis.status === 'ready')
      c.redis.sunsubscribe(this.channels[index]!).catch(() => undefined);
  }
}

/** The Cluster slot of a key or channel: CRC16 (XMODEM) of its hash tag, mod 16384. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
