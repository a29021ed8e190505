import { describe, expect, it } from 'vitest';
import { capabilityPart } from '../../shared/capability-digest.ts';
import { CapabilityDigestCache } from '../../services/gateway/digest-cache.ts';

describe('capability digest cache', () => {
  it('computes once per distinct raw value and node, and recomputes on change', () => {
    const cache = new CapabilityDigestCache();
    let computed = 0;
    const get = (node: string, value: unknown) =>
      cache.part(node, 'lang', value, () => {
        computed++;
        return capabilityPart(value);
      });
    const a = get('n1', { l: ['en', 'zh'] });
    expect(get('n1', { l: ['en', 'zh'] })).toBe(a);
    expect(computed).toBe(1);
    const b = get('n1', { l: ['zh', 'en'] }); // another raw form: recomputed, same digest
    expect(computed).toBe(2);
    expect(b.digest).toBe(a.digest);
    get('n2', { l: ['zh', 'en'] });
    expect(computed).toBe(3);
  });

  it('is bounded', () => {
    const cache = new CapabilityDigestCache(10);
    for (let i = 0; i < 100; i++) cache.part(`n${i}`, 'svc', i, () => capabilityPart(i));
    expect(cache.size).toBe(10);
  });
});
