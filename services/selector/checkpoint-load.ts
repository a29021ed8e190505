import type { SnapshotEntry } from '../../shared/snapshot-entry.ts';
import type { LangBlobs } from './lang-blobs.ts';
import { hashEntries, parseEntry } from './snapshot-delta.ts';

/**
 * One shard's checkpoint as the SnapshotReplica loads it (snapshot-replica.ts): HGETALL ckpt as
 * its flat [id, value, …] reply (issued through `call`: ioredis turns a plain HGETALL reply into
 * an object, ~5 µs per entry at 100,000; the values name no id, the fields do) parsed into
 * entries, the language blobs of HGETALL caps learnt (once per digest,
 * lang-blobs.ts) and attached. `malformed`: values that are not entries (skipped); `noLang`:
 * entries naming a blob the shard lacks (kept without languages: a bug to report, since the
 * checkpoint holds a reference to every blob its entries name). Pure but for `langs`.
 */
export function decodeCheckpoint(
  flat: unknown,
  caps: unknown,
  langs: LangBlobs,
): { entries: SnapshotEntry[]; malformed: number; noLang: number } {
  const blobs = hashEntries(caps);
  const entries: SnapshotEntry[] = [];
  let malformed = 0;
  let noLang = 0;
  const pairs = Array.isArray(flat) ? (flat as unknown[]) : [];
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const json = String(pairs[i + 1]);
    let parsed: ReturnType<typeof parseEntry>;
    try {
      parsed = parseEntry(json, String(pairs[i]));
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
