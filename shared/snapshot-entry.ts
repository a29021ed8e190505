import { languageProfile, pipelinePools, type LanguageCapabilities } from './language-pairs.ts';
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
  /**
   * Directed full-pipeline pools ("zh:en", "auto:en"), derived from `lang` by the flush
   * (pipelinePools); none while the node is offline.
   */
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

/**
 * What a flush needs to build an entry, in this order: node hash fields, except `cap_svc`,
 * `cap_static` and `cap_lang`, the blobs of the node's digests (`dg_svc`, `dg_static`,
 * `dg_lang`) that SnapshotStore.readNodes resolves from the shard's caps hash.
 */
export const ENTRY_FIELDS = [
  'status',
  'draining',
  'hb_at',
  'gpu',
  'cap_svc',
  'cap_static',
  'cap_lang',
  'dg_lang',
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
 * What an entry derives from a capability blob, decoded once per blob: the blobs are
 * content-addressed (a digest names one content for ever), so a fleet of a few distinct
 * capability sets costs a few parses, not one per node per publish. Bounded: cleared when full.
 */
const DECODED_MAX = 4096;
const decodedTypes = new Map<string, ServiceType[]>();
const decodedStatic = new Map<string, DecodedStatic>();
const decodedLang = new Map<string, DecodedLang>();

function decoded<T>(cache: Map<string, T>, blob: string | null, decode: (blob: string | null) => T): T {
  const key = blob ?? '';
  let value = cache.get(key);
  if (value === undefined) {
    if (cache.size >= DECODED_MAX) cache.clear();
    value = decode(blob);
    cache.set(key, value);
  }
  return value;
}

const decodeTypes = (blob: string | null): ServiceType[] => {
  const svc = json<{ capability_by_type?: { type: ServiceType; ready: boolean }[] }>(blob, {});
  return [...new Set((svc.capability_by_type ?? []).filter((c) => c.ready).map((c) => c.type))].sort();
};
/** What an entry takes from the static blob: feature flags and accept_public_jobs. */
interface DecodedStatic {
  features: string[];
  public: boolean;
}
const decodeStatic = (blob: string | null): DecodedStatic => {
  const st = json<{ features_supported?: Record<string, boolean>; accept_public_jobs?: boolean }>(blob, {});
  const features = st.features_supported ?? {};
  return {
    features: FEATURE_FLAGS.filter((flag) => features[flag] === true),
    public: st.accept_public_jobs === true,
  };
};
const decodeLang = (blob: string | null): DecodedLang => decodeLangBlob(blob ?? '');

/**
 * Builds the entry from ENTRY_FIELDS' values; null when the node record is gone (or removed),
 * which the flush publishes as a removal. The entry's arrays and `lang` are shared between
 * entries of the same capabilities: read-only.
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
  const { lang, pools } = decoded(decodedLang, f.cap_lang, decodeLang);
  const st = decoded(decodedStatic, f.cap_static, decodeStatic);
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
    public: st.public,
    types: decoded(decodedTypes, f.cap_svc, decodeTypes),
    features: st.features,
    lang,
    langDigest: f.dg_lang ?? '',
    pools: f.status === 'offline' ? [] : pools,
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

/**
 * An entry as the checkpoint and the deltas carry it (issue 13): a JSON array, its languages by
 * digest only and its pools left out (both derived from the language blob, which readers take
 * from the shard's caps hash and cache by digest):
 *   [langDigest, id, status, draining, hb, at, changedAt, gpu, public, types, features,
 *    max, running, reserved, cpu, gpuPct, mem, quarantinedUntil?, quarantineReason?]
 * booleans as 0/1, an absent changedAt as 0, gpuPct null when not reported, the quarantine pair
 * only when set. The digest comes first: publishSnapshot's Lua reads it with one match to count
 * the checkpoint's reference to the blob. ~40 % of the object form's bytes and faster to parse.
 * In the checkpoint (`form` 'checkpoint') the id is 0: the hash field names the node
 * (publishSnapshot-8+.lua writes the delta's entry so, ~18 B less per node).
 */
export function encodeEntry(e: SnapshotEntry, form: 'delta' | 'checkpoint' = 'delta'): string {
  const wire: unknown[] = [
    e.langDigest,
    form === 'checkpoint' ? 0 : e.id,
    e.status,
    e.draining ? 1 : 0,
    e.hb,
    e.at,
    e.changedAt ?? 0,
    e.gpu ? 1 : 0,
    e.public ? 1 : 0,
    e.types,
    e.features,
    e.max,
    e.running,
    e.reserved,
    e.cpu,
    e.gpuPct,
    e.mem,
  ];
  if (e.quarantinedUntil !== undefined) wire.push(e.quarantinedUntil, e.quarantineReason ?? '');
  return JSON.stringify(wire);
}

const WIRE_FIELDS = 17;

/** A decoded entry; `byDigest`: its `lang` (`{}`) and `pools` (`[]`) wait for its language blob. */
export interface DecodedEntry {
  entry: SnapshotEntry;
  byDigest: boolean;
}

/**
 * An entry from its checkpoint/delta form (parsed JSON), or null when it is not one; `id`: the
 * checkpoint field it was read from (the checkpoint form names no id; one published before
 * issue 13's fifth step does). The compact form comes with `byDigest`: the reader attaches what
 * the language blob gives (`attachLang`); an entry in the object form (published before issue
 * 13) comes back as it was.
 */
export function decodeEntry(value: unknown, id?: string): DecodedEntry | null {
  if (!Array.isArray(value)) {
    const e = value as SnapshotEntry | null;
    return typeof e === 'object' && e !== null && typeof e.id === 'string'
      ? { entry: e, byDigest: false }
      : null;
  }
  const w = value as unknown[];
  const named = typeof w[1] === 'string' ? w[1] : w[1] === 0 ? id : undefined;
  if (w.length < WIRE_FIELDS || named === undefined || typeof w[0] !== 'string') return null;
  const changedAt = w[6] as number;
  const entry: SnapshotEntry = {
    id: named,
    status: w[2] as NodeStatus,
    draining: w[3] === 1,
    hb: w[4] as number,
    at: w[5] as number,
    ...(changedAt > 0 ? { changedAt } : {}),
    gpu: w[7] === 1,
    public: w[8] === 1,
    types: w[9] as ServiceType[],
    features: w[10] as string[],
    lang: {},
    langDigest: w[0],
    pools: [],
    max: w[11] as number,
    running: w[12] as number,
    reserved: w[13] as number,
    cpu: w[14] as number,
    gpuPct: w[15] as number | null,
    mem: w[16] as number,
  };
  if (w.length > WIRE_FIELDS) {
    entry.quarantinedUntil = w[17] as number;
    entry.quarantineReason = w[18] as string;
  }
  return { entry, byDigest: true };
}

/**
 * What a reader derives from a language blob, once per digest: the parsed capabilities and the
 * pools they give. Entries share these objects: read-only.
 */
export interface DecodedLang {
  lang: LanguageCapabilities;
  pools: string[];
}

/** Parses a language blob (canonical JSON of language_capabilities) and derives its pools. */
export function decodeLangBlob(blob: string): DecodedLang {
  const lang = json<LanguageCapabilities>(blob, {});
  return { lang, pools: pipelinePools(languageProfile(lang)) };
}

/** Gives a compact entry the languages and pools of its blob (none while offline). */
export function attachLang(e: SnapshotEntry, d: DecodedLang): SnapshotEntry {
  e.lang = d.lang;
  e.pools = e.status === 'offline' ? [] : d.pools;
  return e;
}
