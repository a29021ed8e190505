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

/** Raw JSON text of a heartbeat's capability fields, as received (before validation). */
export interface RawCapabilities {
  svc: string;
  lang: string | undefined;
  models: string | undefined;
}

interface Entry {
  svc: string;
  svcPart: CapabilityPart;
  anyReady: boolean;
  lang?: { raw: string; part: CapabilityPart };
  models?: { raw: string; part: CapabilityPart };
}

const present = (v: unknown): boolean => v !== null && v !== undefined;

/**
 * Per-node memory of the capability text a node last sent and its canonical parts. Nodes
 * resend identical capabilities with every heartbeat: when the raw text equals what this node
 * sent before, it was validated and canonicalised then, so the heartbeat needs neither again
 * (one JSON.stringify instead of zod + canonical form + SHA-1). Bounded: past `maxNodes` the
 * oldest node's entry is dropped; it is only a cache.
 */
export class CapabilityCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxNodes = 100_000) {}

  static raw(body: Record<string, unknown>): RawCapabilities {
    const lang = body['language_capabilities'];
    const models = body['installed_models'];
    return {
      svc: JSON.stringify([body['installed_services'] ?? null, body['capability_by_type'] ?? null]),
      lang: present(lang) ? JSON.stringify(lang) : undefined,
      models: present(models) ? JSON.stringify(models) : undefined,
    };
  }

  /** The parts when every part present in `raw` matches this node's cached text, else null. */
  hit(nodeId: string, raw: RawCapabilities): HeartbeatCapabilities | null {
    const e = this.entries.get(nodeId);
    if (!e || e.svc !== raw.svc) return null;
    if (raw.lang !== undefined && e.lang?.raw !== raw.lang) return null;
    if (raw.models !== undefined && e.models?.raw !== raw.models) return null;
    return {
      svc: e.svcPart,
      lang: raw.lang === undefined ? null : e.lang!.part,
      models: raw.models === undefined ? null : e.models!.part,
      anyReady: e.anyReady,
      cached: true,
    };
  }

  /** Computes the parts of a validated heartbeat, reusing what still matches, and remembers them. */
  resolve(nodeId: string, raw: RawCapabilities, hb: NodeHeartbeat): HeartbeatCapabilities {
    let e = this.entries.get(nodeId);
    if (!e || e.svc !== raw.svc) {
      if (!e && this.entries.size >= this.maxNodes) this.entries.delete(this.entries.keys().next().value!);
      e = {
        ...e,
        svc: raw.svc,
        svcPart: servicesPart(hb.installed_services, hb.capability_by_type),
        anyReady: anyServiceReady(hb.capability_by_type),
      };
      this.entries.set(nodeId, e);
    }
    const entry = e;
    const part = (
      name: 'lang' | 'models',
      text: string | undefined,
      value: unknown,
    ): CapabilityPart | null => {
      if (text === undefined) return null;
      const known = entry[name];
      if (known?.raw === text) return known.part;
      const fresh = { raw: text, part: capabilityPart(value) };
      entry[name] = fresh;
      return fresh.part;
    };
    return {
      svc: entry.svcPart,
      lang: part('lang', raw.lang, hb.language_capabilities),
      models: part('models', raw.models, hb.installed_models),
      anyReady: entry.anyReady,
      cached: false,
    };
  }

  get size(): number {
    return this.entries.size;
  }
}
