import {
  attachLang,
  decodeLangBlob,
  type DecodedLang,
  type SnapshotEntry,
} from '../../shared/snapshot-entry.ts';

/** Distinct language blobs kept decoded; beyond it the cache starts again (entries keep theirs). */
const LIMIT = 10_000;

/**
 * The selector's language blobs by digest (issue 13): checkpoint and delta entries name a
 * node's language capabilities by digest (`langDigest`); the blob, read from the shard's caps
 * hash, is parsed and its pools derived once per digest, and every entry of that digest shares
 * the result. A digest names one content for ever, so nothing here goes stale.
 */
export class LangBlobs {
  private readonly decoded = new Map<string, DecodedLang>();

  constructor() {
    this.decoded.set('', decodeLangBlob('')); // no languages reported: nothing to read
  }

  has(digest: string): boolean {
    return this.decoded.has(digest);
  }

  /** Decodes `blob` under `digest` (once). */
  learn(digest: string, blob: string): void {
    if (this.decoded.has(digest)) return;
    if (this.decoded.size >= LIMIT) {
      this.decoded.clear();
      this.decoded.set('', decodeLangBlob(''));
    }
    this.decoded.set(digest, decodeLangBlob(blob));
  }

  /** Attaches the languages and pools of the entry's digest; false when the digest is unknown. */
  attach(entry: SnapshotEntry): boolean {
    const d = this.decoded.get(entry.langDigest);
    if (d === undefined) return false;
    attachLang(entry, d);
    return true;
  }

  /** Of `entries`, the digests not known yet (deduplicated). */
  unknown(entries: Iterable<SnapshotEntry>): string[] {
    const out = new Set<string>();
    for (const e of entries) if (!this.decoded.has(e.langDigest)) out.add(e.langDigest);
    return [...out];
  }
}
