import type { LanguageCapabilities } from './language-pairs.ts';
import { FEATURE_FLAGS, type ServiceType } from './protocol/node-messages.ts';

/**
 * The published snapshot entry of one node: what selection needs, nothing more. Written by the
 * worker's flush into the shard checkpoint (`{p:sK}:ckpt`, field = node id, value = JSON) and
 * carried in the delta stream; read by every selector replica.
 */
export interface SnapshotEntry {
  id: string;
  status: NodeStatus;
  /** Operator drain flag: no new jobs; running ones continue. */
  draining: boolean;
  /** Server time (ms) of the last heartbeat (or registration) this entry reflects. */
  hb: number;
  /** Server time (ms) the flush published this entry. */
  at: number;
  /**
   * Server time (ms) the gateway applied the first heartbeat (or registration) that changed the
   * node since its previous publication (`chg_at`, stamped by recordHeartbeat/registerNode):
   * where the pipeline lag of that change starts. Absent: never stamped. An entry republished
   * for another reason (a reservation, a drain) carries the same value again.
   */
  changedAt?: number;
  gpu: boolean;
  /** accept_public_jobs */
  public: boolean;
  /** Service types the node reports ready (capability_by_type). */
  types: ServiceType[];
  /** Feature flags the node supports (features_supported = true). */
  features: string[];
  /** language_capabilities as registered/heartbeated (canonical form), and its digest. */
  lang: LanguageCapabilities;
  langDigest: string;
  /** Directed full-pipeline pools ("zh:en", "auto:en") from the pool index. */
  pools: string[];
  max: number;
  running: number;
  reserved: number;
  cpu: number;
  /** null when the node does not report it. */
  gpuPct: number | null;
  mem: number;
  /** Server time (ms) until which selection skips the node (README "Quarantine"); absent: never was. */
  quarantinedUntil?: number;
  /** The fault that quarantined it (ack_timeout, job_timeout, job_failed, node_error). */
  quarantineReason?: string;
}

export type NodeStatus = 'registering' | 'ready' | 'degraded' | 'offline';

/** The node hash fields a flush reads to build an entry, in this order. */
export const ENTRY_FIELDS = [
  'status',
  'draining',
  'hb_at',
  'gpu',
  'accept_public',
  'cap_svc',
  'cap_static',
  'cap_lang',
  'dg_lang',
  'pools',
  'max_jobs',
  'running',
  'committed',
  'reserved',
  'cpu',
  'gpu_pct',
  'mem',
  'q_until',
  'q_reason',
  'chg_at',
] as const;

const num = (v: string | null, fallback = 0): number => {
  const n = v === null || v === '' ? NaN : Number(v);
  return Number.isFinite(n) ? n : fallback;
};

function json<T>(text: string | null, fallback: T): T {
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/**
 * Builds the entry from the HMGET of ENTRY_FIELDS; null when the node record is gone (or
 * removed), which the flush publishes as a removal.
 */
export function buildSnapshotEntry(
  id: string,
  values: (string | null)[],
  publishedAt: number,
): SnapshotEntry | null {
  const f = Object.fromEntries(ENTRY_FIELDS.map((name, i) => [name, values[i] ?? null])) as Record<
    (typeof ENTRY_FIELDS)[number],
    string | null
  >;
  if (f.status === null || f.status === 'removed') return null;
  const svc = json<{ capability_by_type?: { type: ServiceType; ready: boolean }[] }>(f.cap_svc, {});
  const stat = json<{ features_supported?: Record<string, boolean> }>(f.cap_static, {});
  const features = stat.features_supported ?? {};
  const quarantinedUntil = num(f.q_until);
  const changedAt = num(f.chg_at);
  return {
    ...(quarantinedUntil > 0 ? { quarantinedUntil, quarantineReason: f.q_reason ?? '' } : {}),
    id,
    status: f.status as NodeStatus,
    draining: f.draining === '1',
    hb: num(f.hb_at),
    at: publishedAt,
    ...(changedAt > 0 ? { changedAt } : {}),
    gpu: f.gpu === '1',
    public: f.accept_public === '1',
    types: [...new Set((svc.capability_by_type ?? []).filter((c) => c.ready).map((c) => c.type))].sort(),
    features: FEATURE_FLAGS.filter((flag) => features[flag] === true),
    lang: json<LanguageCapabilities>(f.cap_lang, {}),
    langDigest: f.dg_lang ?? '',
    pools: json<string[]>(f.pools, []),
    max: num(f.max_jobs, 4),
    // what the node reports, or what it acked and has not finished, whichever is more
    running: Math.max(num(f.running), num(f.committed)),
    reserved: num(f.reserved),
    cpu: num(f.cpu),
    gpuPct: f.gpu_pct === null || f.gpu_pct === '' ? null : num(f.gpu_pct),
    mem: num(f.mem),
  };
}

/**
 * The values the heartbeat script compares against to decide significance, as stored in the
 * shard's published-values hash: "status|running|cpu|gpu|mem|publishedAt" (gpu '' when absent).
 */
export function publishedValues(e: SnapshotEntry): string {
  return `${e.status}|${e.running}|${e.cpu}|${e.gpuPct ?? ''}|${e.mem}|${e.at}`;
}
