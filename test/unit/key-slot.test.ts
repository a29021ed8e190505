import { describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../shared/keys.ts';
import { keySlot } from '../../shared/store/shard-subscriber.ts';

describe('keySlot (the Cluster slot a job shard channel is subscribed at)', () => {
  it('is CRC16/XMODEM mod 16384, as Redis computes it', () => {
    // values from the Redis Cluster specification and CLUSTER KEYSLOT
    expect(keySlot('123456789')).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('')).toBe(0);
  });

  it('hashes only the hash tag: a job shard channel shares the slot of its job records', () => {
    const keys = new KeyBuilder('sb', 16);
    for (const id of ['job-1', 'job-2', 'a', 'lingua-77']) {
      expect(keySlot(keys.jobEventsOf(id))).toBe(keySlot(keys.job(id)));
      expect(keySlot(keys.jobEventsOf(id))).toBe(keySlot(keys.partials(id)));
    }
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar')); // an empty first tag: the whole key
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar')); // up to the first } after the first {
  });
});
