import { describe, expect, it } from 'vitest';
import { KeyBuilder, shardOf } from '../../shared/keys.ts';

describe('key builder', () => {
  const keys = new KeyBuilder('sb', 16);

  it('tags every key of a shard with the same hash tag', () => {
    const s = keys.forNode('node-1');
    const tag = `{sb:s${s.shard}}`;
    for (const key of [
      s.nodes,
      s.live,
      s.offline,
      s.dirty,
      s.dirtyTaken,
      s.checkpoint,
      s.version,
      s.deltas,
      s.node('node-1'),
      s.inbox('node-1'),
    ]) {
      expect(key.startsWith(`${tag}:`), key).toBe(true);
    }
  });

  it('spreads nodes over shards by crc32 and is stable', () => {
    expect(shardOf('node-1', 16)).toBe(shardOf('node-1', 16));
    const used = new Set(Array.from({ length: 500 }, (_, i) => shardOf(`node-${i}`, 16)));
    expect(used.size).toBe(16);
  });

  it('hash-tags the BullMQ prefix', () => {
    expect(keys.queuePrefix).toBe('{sbq}');
  });

  it('refuses shards out of range', () => {
    expect(() => keys.shard(16)).toThrow(RangeError);
  });
});
