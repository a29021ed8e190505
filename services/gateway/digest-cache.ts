import type { CapabilityPart, CapabilityPartName } from '../../shared/capability-digest.ts';

/**
 * Remembers, per node and capability part, the last raw JSON seen and its canonical part.
 * Nodes resend identical capabilities with every heartbeat; re-serialising is ~5x cheaper
 * than canonicalising and hashing, so an unchanged part costs one JSON.stringify.
 * Bounded: beyond `maxNodes` the oldest node's entry is dropped (it is only a cache).
 */
export class CapabilityDigestCache {
  private readonly entries = new Map<
    string,
    Map<CapabilityPartName, { raw: string; part: CapabilityPart }>
  >();

  constructor(private readonly maxNodes = 100_000) {}

  part(
    nodeId: string,
    name: CapabilityPartName,
    value: unknown,
    compute: () => CapabilityPart,
  ): CapabilityPart {
    const raw = JSON.stringify(value) ?? 'null';
    let node = this.entries.get(nodeId);
    const hit = node?.get(name);
    if (hit && hit.raw === raw) return hit.part;
    if (!node) {
      if (this.entries.size >= this.maxNodes) this.entries.delete(this.entries.keys().next().value!);
      node = new Map();
      this.entries.set(nodeId, node);
    }
    const part = compute();
    node.set(name, { raw, part });
    return part;
  }

  get size(): number {
    return this.entries.size;
  }
}
