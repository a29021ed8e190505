import { decodeEntry, type SnapshotEntry } from '../../shared/snapshot-entry.ts';

/**
 * Decoding of what the worker's publishSnapshot script writes (lua/publishSnapshot-8+.lua):
 * checkpoint hash values (an entry each, shared/snapshot-entry.ts encodeEntry) and delta stream
 * entries `<version>-0` with fields v, at, up (JSON array of entries), rm (JSON array of ids) —
 * and of the replies that carry them. Entries in the compact form name their languages by
 * digest: the replica attaches them (lang-blobs.ts) before applying. Pure: no I/O.
 */

export interface SnapshotDelta {
  version: number;
  /** Server time (ms) of the flush that published it. */
  at: number;
  upserts: SnapshotEntry[];
  /** The upserts whose languages are named by digest only (to attach before applying). */
  byDigest: SnapshotEntry[];
  removals: string[];
}

/** Stream entries as XREAD/XRANGE return them: [id, [field, value, ...]]. */
export type StreamEntry = [id: string, fields: string[]];

export class MalformedSnapshotError extends Error {
  override readonly name = 'MalformedSnapshotError';
}

/** The stream ID after which XREAD returns the deltas newer than `version`. */
export function streamIdOf(version: number): string {
  return `${version}-0`;
}

/** Version carried by a delta's stream ID `<version>-0` (its milliseconds part). */
export function versionOfStreamId(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/**
 * Parses the checkpoint value of node `id`; throws MalformedSnapshotError when it is not an
 * entry. `byDigest`: its languages wait for their blob.
 */
export function parseEntry(json: string, id: string): { entry: SnapshotEntry; byDigest: boolean } {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new MalformedSnapshotError('checkpoint value is not JSON');
  }
  const decoded = decodeEntry(value, id);
  if (!decoded) throw new MalformedSnapshotError('checkpoint value is not a snapshot entry');
  return decoded;
}

/** Parses one delta stream entry completely before anything is applied (all or nothing). */
export function parseDelta([id, fields]: StreamEntry): SnapshotDelta {
  const field = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) field.set(fields[i]!, fields[i + 1]!);
  const version = versionOfStreamId(id);
  const at = Number(field.get('at'));
  let upserts: unknown;
  let removals: unknown;
  try {
    upserts = JSON.parse(field.get('up') ?? '[]');
    removals = JSON.parse(field.get('rm') ?? '[]');
  } catch {
    throw new MalformedSnapshotError(`delta ${id}: up/rm is not JSON`);
  }
  if (!Number.isSafeInteger(version) || !Number.isFinite(at)) {
    throw new MalformedSnapshotError(`delta ${id}: bad version or time`);
  }
  if (!Array.isArray(upserts)) throw new MalformedSnapshotError(`delta ${id}: up is not an array of entries`);
  const entries: SnapshotEntry[] = [];
  const byDigest: SnapshotEntry[] = [];
  for (const value of upserts) {
    const decoded = decodeEntry(value);
    if (!decoded) throw new MalformedSnapshotError(`delta ${id}: up is not an array of entries`);
    entries.push(decoded.entry);
    if (decoded.byDigest) byDigest.push(decoded.entry);
  }
  if (!Array.isArray(removals) || !removals.every((r) => typeof r === 'string')) {
    throw new MalformedSnapshotError(`delta ${id}: rm is not an array of ids`);
  }
  return { version, at, upserts: entries, byDigest, removals };
}

/** MULTI/EXEC results; throws the first command error (or when the transaction was discarded). */
export function execResults(reply: [Error | null, unknown][] | null | undefined): unknown[] {
  if (!reply) throw new Error('MULTI discarded');
  return reply.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** A shard version as GET ver returns it (missing = 0). */
export function toVersion(raw: unknown): number {
  const version = raw === null || raw === undefined ? 0 : Number(raw);
  if (!Number.isSafeInteger(version) || version < 0) throw new Error(`bad snapshot version ${String(raw)}`);
  return version;
}

/** HGETALL as ioredis returns it (an object, or a flat [field, value, ...] array), as a Map. */
export function hashEntries(raw: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(raw))
    for (let i = 0; i + 1 < raw.length; i += 2) out.set(String(raw[i]), String(raw[i + 1]));
  else if (raw && typeof raw === 'object')
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) out.set(k, String(v));
  return out;
}
