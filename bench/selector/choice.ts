/**
 * In-process choice: `select(index, req, policy)` — the pure, synchronous part of
 * POST /v1/jobs that `sb_selection_duration_seconds` measures — timed call by call over a
 * SnapshotIndex of synthetic nodes (fleet.ts), for several kinds of request, interleaved
 * round-robin so that every kind runs under the same heap and JIT state. The caller pins the
 * process; nothing else of the benchmark runs meanwhile.
 */
import { select, type SelectionPolicy, type SelectionRequest } from '../../services/selector/selection.ts';
import { SnapshotIndex } from '../../services/selector/snapshot-index.ts';
import { summarize, type SampleSummary } from '../lib/stats.ts';
import { PROFILES, seededRandom, syntheticFleet } from './fleet.ts';

export interface RequestKind {
  name: string;
  /** A fresh request per call (as the placer builds one per job); `i` = call number. */
  build: (i: number) => SelectionRequest;
}

const FULL = { asr: true, nmt: true, tts: true, semantic: false, tone: false };

function request(over: Partial<SelectionRequest>): SelectionRequest {
  return {
    srcLang: 'zh',
    tgtLang: 'en',
    pipeline: FULL,
    features: [],
    routingKey: null,
    public: true,
    requireGpu: true,
    autoLangs: null,
    preferredNodeId: null,
    excludeNodeIds: [],
    ...over,
  };
}

/** The request mix: common full-pipeline jobs first, then the partial and special paths. */
export const REQUEST_KINDS: RequestKind[] = [
  { name: 'zh→en full (p2c)', build: () => request({}) },
  {
    name: 'zh→en full, routing key',
    build: (i) => request({ routingKey: `session-${i % 5000}` }),
  },
  { name: 'en→ja full', build: () => request({ srcLang: 'en', tgtLang: 'ja' }) },
  { name: 'auto→en full', build: () => request({ srcLang: 'auto' }) },
  {
    name: 'auto→en, auto_langs [zh,ja]',
    build: () => request({ srcLang: 'auto', autoLangs: ['zh', 'ja'] }),
  },
  {
    name: 'zh→en ASR+NMT (no TTS)',
    build: () => request({ pipeline: { ...FULL, tts: false } }),
  },
  {
    name: 'zh→en NMT only (text)',
    build: () => request({ pipeline: { asr: false, nmt: true, tts: false, semantic: false, tone: false } }),
  },
  {
    name: 'TTS only →en',
    build: () =>
      request({
        srcLang: 'en',
        pipeline: { asr: false, nmt: false, tts: true, semantic: false, tone: false },
      }),
  },
  {
    name: 'zh→en + semantic + emotion',
    build: () => request({ pipeline: { ...FULL, semantic: true }, features: ['emotion_detection'] }),
  },
  {
    name: 'zh→en, 3 excluded, preferred',
    build: (i) =>
      request({
        excludeNodeIds: ['sel-node-000001', 'sel-node-000002', 'sel-node-000003'],
        preferredNodeId: `sel-node-${String((i * 7) % 10_000).padStart(6, '0')}`,
      }),
  },
  { name: 'sw→fi (no candidate: 503)', build: () => request({ srcLang: 'sw', tgtLang: 'fi' }) },
];

export interface KindResult {
  name: string;
  /** From the first call: what the breakdown said. */
  totalNodes: number;
  candidates: number;
  eligible: number;
  message: string;
  /** µs per call (wall clock). */
  us: SampleSummary;
  /**
   * Mean µs of this thread's CPU per call (process.threadCpuUsage around each call, summed):
   * what a call costs whatever else the machine runs (time spent waiting for a core is left
   * out). The clock ticks in jiffies (4 ms here), so only the mean over many calls means
   * anything, not a percentile.
   */
  cpuUsMean: number;
}

export interface ChoiceResult {
  nodes: number;
  profiles: { name: string; nodes: number }[];
  /** Nodes per full-pipeline pool the requests use (index sizes). */
  pools: Record<string, number>;
  /** Nodes known to the policy's knownLoad (as the placer's live reservation replies). */
  knownLoadNodes: number;
  warmupCalls: number;
  callsPerKind: number;
  kinds: KindResult[];
  /** Every call of every kind together (µs): the mix, equally weighted. */
  all: SampleSummary;
  /** Mean µs of thread CPU per call over the mix. */
  allCpuUsMean: number;
  /** Wall time of the measured loop, and how much of it was spent outside select(). */
  seconds: number;
  /** Heap used after the index was built (MB). */
  heapMb: number;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Builds the index over `nodes` synthetic entries, warms up, then runs `calls` rounds of every
 * kind (round-robin), timing each select() with performance.now().
 */
export async function measureChoice(nodes: number, calls: number, warmup: number): Promise<ChoiceResult> {
  const fleet = syntheticFleet(nodes);
  const index = new SnapshotIndex();
  for (const entry of fleet.entries) index.upsert(entry, 0);
  // The placer passes knownLoad: what its reservation replies taught it, newer than the
  // snapshot. About 2 % of nodes have such an entry here; as the placer does, they are marked
  // in the index (knownLoadMarked), so that select() asks about those of them still in the
  // running only, found by bit set (knownLoadIds, before 2026-12-03: one id lookup per known
  // node, ~300 µs a call at 50,000 nodes; without either, it asks about every candidate).
  const random = seededRandom(7);
  const known = new Map<string, { running: number; reserved: number }>();
  for (const e of fleet.entries)
    if (random() < 0.02) known.set(e.id, { running: e.running, reserved: e.reserved + 1 });
  for (const id of known.keys()) index.markKnown(id);
  const policy: SelectionPolicy = {
    strategy: 'p2c',
    resourceThreshold: 85,
    affinity: true,
    knownLoad: (id) => known.get(id),
    knownLoadMarked: true,
  };

  const kinds = REQUEST_KINDS;
  const samples = kinds.map(() => new Float64Array(calls));
  const cpuUs = kinds.map(() => 0);
  const first = kinds.map((k) => select(index, k.build(0), policy));
  for (let i = 0; i < warmup; i++) {
    for (const kind of kinds) select(index, kind.build(i), policy);
    if (i % 200 === 199) await yieldToLoop();
  }
  const started = performance.now();
  let sink = 0;
  for (let i = 0; i < calls; i++) {
    for (let k = 0; k < kinds.length; k++) {
      const req = kinds[k]!.build(i);
      const c0 = process.threadCpuUsage();
      const t0 = performance.now();
      const result = select(index, req, policy);
      samples[k]![i] = (performance.now() - t0) * 1000;
      const c1 = process.threadCpuUsage();
      cpuUs[k]! += c1.user - c0.user + (c1.system - c0.system);
      sink += result.ranked.length;
    }
    // Between jobs the selector's event loop runs other work: yield now and then as it would.
    if (i % 200 === 199) await yieldToLoop();
  }
  const seconds = (performance.now() - started) / 1000;
  if (sink < 0) throw new Error('unreachable');

  const all = new Float64Array(calls * kinds.length);
  samples.forEach((s, k) => all.set(s, k * calls));
  const pools: Record<string, number> = {};
  for (const key of ['zh:en', 'en:ja', 'auto:en']) pools[`pool ${key}`] = index.index('pool', key).size;
  pools['asrNmt zh:en'] = index.index('asrNmt', 'zh:en').size;
  pools['nmt zh:en'] = index.index('nmt', 'zh:en').size;
  pools['tts en'] = index.index('tts', 'en').size;
  return {
    nodes,
    profiles: PROFILES.map((p) => ({ name: p.name, nodes: fleet.perProfile[p.name] ?? 0 })),
    pools,
    knownLoadNodes: known.size,
    warmupCalls: warmup,
    callsPerKind: calls,
    kinds: kinds.map((kind, k) => ({
      name: kind.name,
      totalNodes: first[k]!.breakdown.total_nodes,
      candidates: first[k]!.breakdown.candidates,
      eligible: first[k]!.breakdown.eligible,
      message: first[k]!.message,
      us: summarize(samples[k]!),
      cpuUsMean: cpuUs[k]! / calls,
    })),
    all: summarize(all),
    allCpuUsMean: cpuUs.reduce((a, b) => a + b, 0) / (calls * kinds.length),
    seconds,
    heapMb: Math.round(process.memoryUsage().heapUsed / 1e6),
  };
}
