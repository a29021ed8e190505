import {
  anyServiceReady,
  capabilityPart,
  servicesPart,
  type CapabilityPart,
} from '../../shared/capability-digest.ts';
import type { NodeHeartbeat } from '../../shared/protocol/node-messages.ts';

/** The capability parts of one heartbeat, ready for the script. */
export interface HeartbeatCapabilities {
  svc: CapabilityPart;
  /** null when the heartbeat did not carry the part (unchanged). */
  lang: CapabilityPart | null;
  models: CapabilityPart | null;
  anyReady: boolean;
  /** True when every part came from the cache: Redis most likely holds these digests already. */
  cached: boolean;
}

interface Entry {
  /** The values as received (parsed JSON, before validation), to compare the next heartbeat's with. */
  services: unknown;
  byType: unknown;
  svcPart: CapabilityPart;
  anyReady: boolean;
  lang?: { value: unknown; part: CapabilityPart };
  models?: { value: unknown; part: CapabilityPart };
  /** The answers of `hit`, by which optional parts the heartbeat carried (made once each). */
  hits: (HeartbeatCapabilities | undefined)[];
}

const present = (v: unknown): boolean => v !== null && v !== undefined;

/**
 * Per-node memory of the capabilities a node last sent and their canonical parts. Nodes resend
 * identical capabilities with every heartbeat: when the received values equal what this node
 * sent before, they were validated and canonicalised then, so the heartbeat needs neither
 * again. The comparison walks the parsed values (`sameJson`) and allocates nothing; comparing
 * re-serialised text cost ~670 B per heartbeat (bench/alloc.ts). Bounded: past `maxNodes` the
 * oldest node's entry is dropped; it is only a cache.
 */
export class CapabilityCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxNodes = 100_000) {}

  /** The parts when every part present in `body` equals this node's cached values, else null. */
  hit(nodeId: string, body: Record<string, unknown>): HeartbeatCapabilities | null {
    const e = this.entries.get(nodeId);
    if (!e) return null;
    if (!sameJson(e.services, body['installed_services'] ?? null)) return null;
    if (!sameJson(e.byType, body['capability_by_type'] ?? null)) return null;
    const lang = body['language_capabilities'];
    const models = body['installed_models'];
    const withLang = present(lang);
    const withModels = present(models);
    if (withLang && (!e.lang || !sameJson(e.lang.value, lang))) return null;
    if (withModels && (!e.models || !sameJson(e.models.value, models))) return null;
    const which = (withLang ? 1 : 0) + (withModels ? 2 : 0);
    return (e.hits[which] ??= {
      svc: e.svcPart,
      lang: withLang ? e.lang!.part : null,
      models: withModels ? e.models!.part : null,
      anyReady: e.anyReady,
      cached: true,
    });
  }

  /**
   * Computes the parts of a validated heartbeat (`hb`: its validated form; `body`: as received),
   * reusing what still matches, and remembers them.
   */
  resolve(nodeId: string, body: Record<string, unknown>, hb: NodeHeartbeat): HeartbeatCapabilities {
    const services = body['installed_services'] ?? null;
    const byType = body['capability_by_type'] ?? null;
    let e = this.entries.get(nodeId);
    if (!e || !sameJson(e.services, services) || !sameJson(e.byType, byType)) {
      if (!e && this.entries.size >= this.maxNodes) this.entries.delete(this.entries.keys().next().value!);
      e = {
        lang: e?.lang,
        models: e?.models,
        services,
        byType,
        svcPart: servicesPart(hb.installed_services, hb.capability_by_type),
        anyReady: anyServiceReady(hb.capability_by_type),
        hits: [],
      };
      this.entries.set(nodeId, e);
    }
    const entry = e;
    const part = (name: 'lang' | 'models', value: unknown, validated: unknown): CapabilityPart | null => {
      if (!present(value)) return null;
      const known = entry[name];
      if (known && sameJson(known.value, value)) return known.part;
      entry[name] = { value, part: capabilityPart(validated) };
      entry.hits = [];
      return entry[name].part;
    };
    return {
      svc: entry.svcPart,
      lang: part('lang', body['language_capabilities'], hb.language_capabilities),
      models: part('models', body['installed_models'], hb.installed_models),
      anyReady: entry.anyReady,
      cached: false,
    };
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Equality of two parsed JSON values: same types, arrays element by element in order, objects
 * with the same own keys (in any order) and equal values. Allocates nothing; recursion is
 * bounded by the frame's nesting limit (MAX_JSON_DEPTH, checked before parsing).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const key in x) {
    if (!Object.hasOwn(x, key)) continue;
    if (!Object.hasOwn(y, key) || !sameJson(x[key], y[key])) return false;
    keys++;
  }
  for (const key in y) if (Object.hasOwn(y, key)) keys--;
  return keys === 0;
}
