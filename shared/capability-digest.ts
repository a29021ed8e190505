import { createHash } from 'node:crypto';
import type { NodeHeartbeat, NodeRegister } from './protocol/node-messages.ts';

/**
 * Canonical form and digest of a node's capabilities, split into parts that arrive
 * separately:
 *   static — agent version, platform, hardware, features, accept_public_jobs,
 *            max_concurrent_jobs (registration only)
 *   svc    — installed_services (without volatile mem_mb / warmup_ms / last_error) and
 *            capability_by_type (without the free-text `reason`)
 *   lang   — language_capabilities
 *   models — installed_models (informational: not stored; the gateway's caches compare them)
 * Canonical: object keys sorted, null and absent fields dropped, arrays sorted by the
 * canonical text of their elements, so neither key order nor list order changes a digest.
 * The heartbeat script stores a part's blob only when its digest differs from the stored one,
 * and only a changed static/svc/lang part counts as a capability change (the flush derives the
 * node's pools again from its language blob).
 */

export type CapabilityPartName = 'static' | 'svc' | 'lang' | 'models';

export interface CapabilityPart {
  /** Canonical JSON of the part. */
  readonly blob: string;
  /** 27-char base64url SHA-1 of the canonical JSON. */
  readonly digest: string;
}

/** Canonical JSON text of any JSON value (see module comment). */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) {
    const items = value.filter((v) => v !== null && v !== undefined).map(canonicalJson);
    items.sort();
    return `[${items.join(',')}]`;
  }
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((k) => record[k] !== null && record[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function capabilityPart(value: unknown): CapabilityPart {
  const blob = canonicalJson(value);
  return { blob, digest: createHash('sha1').update(blob).digest('base64url') };
}

type Service = NodeHeartbeat['installed_services'][number];
type CapabilityByType = NodeHeartbeat['capability_by_type'][number];

function stableService(s: Service): Partial<Service> {
  return {
    service_id: s.service_id,
    type: s.type,
    device: s.device,
    status: s.status,
    version: s.version,
    model_id: s.model_id,
    engine: s.engine,
  };
}

function stableCapability(c: CapabilityByType): Partial<CapabilityByType> {
  return { type: c.type, ready: c.ready, ready_impl_ids: c.ready_impl_ids };
}

export function servicesPart(
  services: readonly Service[] | null | undefined,
  byType: readonly CapabilityByType[],
): CapabilityPart {
  return capabilityPart({
    installed_services: (services ?? []).map(stableService),
    capability_by_type: byType.map(stableCapability),
  });
}

export function staticPart(reg: NodeRegister, defaultMaxJobs: number): CapabilityPart {
  return capabilityPart({
    version: reg.version,
    platform: reg.platform,
    hardware: reg.hardware,
    features_supported: reg.features_supported,
    accept_public_jobs: reg.accept_public_jobs,
    max_concurrent_jobs: reg.max_concurrent_jobs ?? defaultMaxJobs,
  });
}

/** At least one service type the node itself reports ready. */
export function anyServiceReady(byType: readonly CapabilityByType[]): boolean {
  return byType.some((c) => c.ready);
}
