import type { Cluster, Redis } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import { attachLang, decodeEntry, decodeLangBlob, type SnapshotEntry } from '../../shared/snapshot-entry.ts';
import { frame, heartbeatBody, registerBody } from './node-fixtures.ts';
import { JOIN_TOKEN } from './service-harness.ts';
import { TestSocket } from './ws-client.ts';

/** N registered nodes over real WebSockets, for driving a gateway in tests. */
export class TestFleet {
  private constructor(
    readonly ids: string[],
    readonly sockets: TestSocket[],
  ) {}

  static async connect(
    wsUrl: string,
    ids: string[],
    overrides: Record<string, unknown> = {},
  ): Promise<TestFleet> {
    const sockets = await Promise.all(ids.map(() => TestSocket.open(wsUrl, JOIN_TOKEN)));
    await Promise.all(
      sockets.map(async (s, i) => {
        s.send(frame('node_register', registerBody({ node_id: ids[i], ...overrides })));
        await s.nextOfType('node_register_ack');
      }),
    );
    return new TestFleet(ids, sockets);
  }

  heartbeat(
    i: number,
    timestamp: number,
    usage: Record<string, unknown> = {},
    overrides: Record<string, unknown> = {},
  ): void {
    this.sockets[i]!.send(
      frame('node_heartbeat', heartbeatBody(this.ids[i]!, { timestamp, ...overrides }, usage)),
    );
  }

  /** Takes `other`'s nodes in (after this fleet's own): one fleet to heartbeat and close. */
  adopt(other: TestFleet): this {
    this.sockets.push(...other.sockets);
    this.ids.push(...other.ids);
    return this;
  }

  errors(): unknown[] {
    return this.sockets.flatMap((s) => s.frames.filter((f) => f.type === 'error'));
  }

  async close(): Promise<void> {
    await Promise.all(this.sockets.map((s) => s.close()));
  }
}

/** The published checkpoint entry of a node, or null. */
export async function checkpointEntry(
  redis: Redis | Cluster,
  keys: KeyBuilder,
  id: string,
): Promise<SnapshotEntry | null> {
  const k = keys.forNode(id);
  const text = await redis.hget(k.checkpoint, id);
  if (!text) return null;
  const decoded = decodeEntry(JSON.parse(text), id);
  if (!decoded) throw new Error(`checkpoint entry of ${id} is not an entry: ${text}`);
  const { entry, byDigest } = decoded;
  // its languages by digest: the blob from the shard's caps hash, as a selector reads it
  if (byDigest) attachLang(entry, decodeLangBlob((await redis.hget(k.caps, entry.langDigest)) ?? ''));
  return entry;
}

/** Every delta of every shard: [shard, version, upserted ids, removed ids]. */
export async function allDeltas(
  redis: Redis | Cluster,
  keys: KeyBuilder,
): Promise<{ shard: number; version: number; up: string[]; rm: string[] }[]> {
  const out = [];
  for (let shard = 0; shard < keys.shards; shard++) {
    for (const [id, fields] of await redis.xrange(keys.shard(shard).deltas, '-', '+')) {
      const f: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      out.push({
        shard,
        version: Number(id.split('-')[0]),
        up: (JSON.parse(f['up']!) as unknown[]).map((e) => decodeEntry(e)!.entry.id),
        rm: JSON.parse(f['rm']!) as string[],
      });
    }
  }
  return out;
}
