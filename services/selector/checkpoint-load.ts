import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import type { LangBlobs } from './lang-blobs.ts';
import { hashEntries, parseEntry } from './snapshot-delta.ts';

/**
 * One shard's checkpoint as the SnapshotReplica loads it (snapshot-replica.ts): HVALS ckpt (the
 * entries carry their ids: the field names would double the bytes read, and ioredis turns an
 * HGETALL reply into an object, ~5 µs per entry at 100,000) parsed into entries, the language blobs of HGETALL caps learnt (once per digest,
 * lang-blobs.ts) and attached. `malformed`: values that are not entries (skipped); `noLang`:
 * entries naming a blob the shard lacks (kept without languages: a bug to report, since the
 * checkpoint holds a reference to every blob its entries name). Pure but for `langs`.
 */
export function decodeCheckpoint(
  values: unknown,
  caps: unknown,
  langs: LangBlobs,
): { entries: SnapshotEntry[]; malformed: number; noLang: number } {
  const blobs = hashEntries(caps);
  const entries: SnapshotEntry[] = [];
  let malformed = 0;
  let noLang = 0;
  for (const value of Array.isArray(values) ? (values as unknown[]) : []) {
    const json = String(value);
    let parsed: ReturnType<typeof parseEntry>;
    try {
      parsed = parseEntry(json);
    } catch {
      malformed++;
      continue;
    }
    const { entry, byDigest } = parsed;
    if (byDigest && !langs.has(entry.langDigest)) {
      const blob = blobs.get(entry.langDigest);
      if (blob !== undefined) langs.learn(entry.langDigest, blob);
    }
    if (byDigest && !langs.attach(entry)) noLang++;
    entries.push(entry);
  }
  return { entries, malformed, noLang };
}
