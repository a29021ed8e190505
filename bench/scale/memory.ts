/**
 * Redis memory per node: used_memory (summed over the masters) after the fleet registered and
 * settled, minus before, ÷ nodes; on standalone Redis also MEMORY USAGE by kind of key (the
 * node hashes sampled, every per-shard key measured), so a change shows where it saved.
 */
import type { Redis } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import { benchNodeId } from '../lib/node-messages.ts';

export interface MemoryBreakdown {
  usedBytes: number;
  perNodeBytes: number;
  /** Bytes per node by kind of key (standalone only; empty on Cluster). */
  perNodeByKind: Record<string, number>;
  /** The largest kinds of BullMQ key (standalone only). */
  queueKeys: { shape: string; keys: number; bytes: number }[];
}

const NODE_SAMPLES = 300;

async function usage(redis: Redis, key: string): Promise<number> {
  return Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
}

async function scanSum(
  redis: Redis,
  pattern: string,
  shapes?: Map<string, { keys: number; bytes: number }>,
): Promise<number> {
  let cursor = '0';
  let sum = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      const bytes = await usage(redis, key);
      sum += bytes;
      if (shapes) {
        // the key's shape: ids and numbers replaced, so the kinds of key can be told apart
        const shape = key.replace(/bench-node-\d+/g, '<node>').replace(/:\d+$/, ':<n>');
        const s = shapes.get(shape) ?? { keys: 0, bytes: 0 };
        s.keys++;
        s.bytes += bytes;
        shapes.set(shape, s);
      }
    }
  } while (cursor !== '0');
  return sum;
}

export async function memoryBreakdown(
  masters: Redis[],
  standalone: Redis | null,
  keys: KeyBuilder,
  nodes: number,
  usedBefore: number,
): Promise<MemoryBreakdown> {
  let used = 0;
  for (const m of masters) used += Number(/used_memory:(\d+)/.exec(await m.info('memory'))?.[1] ?? 0);
  used -= usedBefore;
  const perNodeByKind: Record<string, number> = {};
  let queueKeys: MemoryBreakdown['queueKeys'] = [];
  if (standalone) {
    const r = standalone;
    let sampled = 0;
    for (let s = 0; s < NODE_SAMPLES; s++) {
      const id = benchNodeId(Math.floor((s * nodes) / NODE_SAMPLES));
      sampled += await usage(r, keys.forNode(id).node(id));
    }
    perNodeByKind['node hash'] = sampled / NODE_SAMPLES;
    const kinds = {
      checkpoint: 'checkpoint',
      deltas: 'deltas',
      published: 'pub',
      live: 'live',
      nodes: 'nodes',
      tokens: 'tokens',
      assignments: 'assign',
      pools: 'pools',
      caps: 'caps',
      capRefs: 'caprefs',
    } as const;
    for (const [field, label] of Object.entries(kinds)) {
      let sum = 0;
      for (let k = 0; k < keys.shards; k++) sum += await usage(r, keys.shard(k)[field as keyof typeof kinds]);
      perNodeByKind[label] = sum / nodes;
    }
    let pools = 0;
    for (let k = 0; k < keys.shards; k++) pools += await scanSum(r, `${keys.shard(k).tag}:pool:*`);
    perNodeByKind['pool sets'] = pools / nodes;
    const shapes = new Map<string, { keys: number; bytes: number }>();
    perNodeByKind['queues'] = (await scanSum(r, `${keys.queuePrefix}*`, shapes)) / nodes;
    queueKeys = [...shapes.entries()]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, 8)
      .map(([shape, v]) => ({ shape, ...v }));
    const known = Object.values(perNodeByKind).reduce((a, b) => a + b, 0);
    perNodeByKind['rest (allocator, overhead)'] = used / nodes - known;
    for (const k of Object.keys(perNodeByKind)) perNodeByKind[k] = Math.round(perNodeByKind[k]!);
  }
  return { usedBytes: used, perNodeBytes: used / nodes, perNodeByKind, queueKeys };
}
