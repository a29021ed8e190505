/**
 * Same-run A/B of the selector's bootstrap in process: another checkout's checkpoint decoding and
 * SnapshotIndex (A) against this tree's (B), over the checkpoint of a synthetic fleet (fleet.ts,
 * entries in their compact wire form, languages by digest, spread over 16 shards), each run on a
 * fresh index, A and B alternated. Prints thread CPU per node for decoding (JSON parse + the
 * language blobs attached) and for indexing (replaceShard of every shard), A → B, and the heap
 * each index holds. Pin it (`taskset -c 1`).
 *
 *   npx tsx bench/selector/bootstrap-ab.ts /path/to/other/checkout [nodes=100000] [rounds=3]
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeEntry, type SnapshotEntry } from '../../shared/snapshot-entry.ts';
import type * as CheckpointModule from '../../services/selector/checkpoint-load.ts';
import type * as LangModule from '../../services/selector/lang-blobs.ts';
import type * as DeltaModule from '../../services/selector/snapshot-delta.ts';
import type * as IndexModule from '../../services/selector/snapshot-index.ts';
import { syntheticFleet } from './fleet.ts';

const other = process.argv[2];
if (!other) throw new Error('usage: bootstrap-ab.ts <other checkout> [nodes] [rounds]');
const nodes = Number(process.argv[3] ?? 100_000);
const rounds = Number(process.argv[4] ?? 3);
const SHARDS = 16;

interface Index {
  replaceShard(shard: number, entries: Iterable<SnapshotEntry>): void;
  readonly size: number;
}
interface Tree {
  name: string;
  /** A shard's HGETALL ckpt and HGETALL caps (as ioredis returns them) → entries, languages attached. */
  decode: (checkpoint: Record<string, string>, caps: Record<string, string>) => SnapshotEntry[];
  newIndex: () => Index;
}

async function tree(root: string, name: string): Promise<Tree> {
  const load = (file: string): Promise<unknown> =>
    import(pathToFileURL(resolve(root, 'services/selector', file)).href);
  const { SnapshotIndex } = (await load('snapshot-index.ts')) as typeof IndexModule;
  const { LangBlobs } = (await load('lang-blobs.ts')) as typeof LangModule;
  const { parseEntry, hashEntries } = (await load('snapshot-delta.ts')) as typeof DeltaModule;
  let decodeCheckpoint: (typeof CheckpointModule)['decodeCheckpoint'] | undefined;
  try {
    ({ decodeCheckpoint } = (await load('checkpoint-load.ts')) as typeof CheckpointModule);
  } catch {
    decodeCheckpoint = undefined; // a tree from before checkpoint-load.ts
  }
  const langs = () => new LangBlobs();
  return {
    name,
    newIndex: () => new SnapshotIndex(),
    decode: (checkpoint, caps) => {
      const l = langs();
      // this tree: HGETALL ckpt as its flat reply (a tree whose checkpoint-load.ts took HVALS wants
      // the values alone); before checkpoint-load.ts: HGETALL ckpt and the loop of SnapshotReplica.load
      if (decodeCheckpoint) return decodeCheckpoint(Object.entries(checkpoint).flat(), caps, l).entries;
      const blobs = hashEntries(caps);
      const out: SnapshotEntry[] = [];
      for (const [id, json] of Object.entries(checkpoint)) {
        const { entry, byDigest } = parseEntry(json, id);
        if (byDigest && !l.has(entry.langDigest)) l.learn(entry.langDigest, blobs.get(entry.langDigest)!);
        if (byDigest) l.attach(entry);
        out.push(entry);
      }
      return out;
    },
  };
}

// The checkpoint: every entry in its wire form, the language blobs by digest (one per profile).
const fleet = syntheticFleet(nodes);
const digests = new Map<unknown, string>();
const caps: Record<string, string> = {};
const shards: Record<string, string>[] = Array.from({ length: SHARDS }, () => ({}));
fleet.entries.forEach((e, i) => {
  let digest = digests.get(e.lang);
  if (digest === undefined) {
    digest = `lang-${digests.size}`;
    digests.set(e.lang, digest);
    caps[digest] = JSON.stringify(e.lang);
  }
  shards[i % SHARDS]![e.id] = encodeEntry({ ...e, langDigest: digest });
});

const trees = [await tree(other, 'A'), await tree(resolve('.'), 'B')];
const thread = () => {
  const c = process.threadCpuUsage();
  return c.user + c.system;
};
const sums = trees.map(() => ({ decode: [] as number[], index: [] as number[], heap: [] as number[] }));
for (let round = 0; round < rounds; round++) {
  for (let t = 0; t < trees.length; t++) {
    const tr = trees[t]!;
    globalThis.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const c0 = thread();
    const decoded = shards.map((checkpoint) => tr.decode(checkpoint, caps));
    const c1 = thread();
    const index = tr.newIndex();
    decoded.forEach((entries, shard) => index.replaceShard(shard, entries));
    const c2 = thread();
    if (index.size !== nodes) throw new Error(`${tr.name}: ${index.size} nodes indexed of ${nodes}`);
    globalThis.gc?.();
    const heap = process.memoryUsage().heapUsed - heap0;
    sums[t]!.decode.push((c1 - c0) / nodes);
    sums[t]!.index.push((c2 - c1) / nodes);
    sums[t]!.heap.push(heap / nodes);
    decoded.length = 0;
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (x: number) => x.toFixed(2).padStart(7);
console.log(
  `${nodes} nodes in ${SHARDS} shards, ${rounds} rounds, A = ${other} → B = this tree (median of rounds)`,
);
console.log(`decode µs/node ${f(med(sums[0]!.decode))} → ${f(med(sums[1]!.decode))}`);
console.log(`index  µs/node ${f(med(sums[0]!.index))} → ${f(med(sums[1]!.index))}`);
console.log(
  `total  µs/node ${f(med(sums[0]!.decode) + med(sums[0]!.index))} → ${f(med(sums[1]!.decode) + med(sums[1]!.index))}`,
);
console.log(
  `heap   B/node  ${f(med(sums[0]!.heap))} → ${f(med(sums[1]!.heap))} (entries and index, after GC; needs --expose-gc)`,
);
