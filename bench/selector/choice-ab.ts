/**
 * Same-run A/B of the in-process choice: another checkout's `select()` (A) against this tree's
 * (B), each over its own SnapshotIndex of the same synthetic fleet (fleet.ts), the request kinds
 * of choice.ts interleaved call by call, both results compared (they must be equal: ranked list,
 * choice, breakdown, message; p2c draws replayed). Prints p50/p99 wall time and mean thread CPU
 * per call, A → B. Pin it (`taskset -c 1`); the machine's load disturbs A and B alike.
 *
 *   npx tsx bench/selector/choice-ab.ts /path/to/other/checkout [nodes=10000] [calls=500]
 *
 * Known load: 2 % of the nodes, as each tree's placer passes it (marked in the index where
 * SnapshotIndex has markKnown, else knownLoadIds).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as B from '../../services/selector/selection.ts';
import { SnapshotIndex as IndexB } from '../../services/selector/snapshot-index.ts';
import { REQUEST_KINDS } from './choice.ts';
import { seededRandom, syntheticFleet } from './fleet.ts';

type Select = typeof B.select;
const other = process.argv[2];
if (!other) throw new Error('usage: choice-ab.ts <other checkout> [nodes] [calls]');
const nodes = Number(process.argv[3] ?? 10_000);
const calls = Number(process.argv[4] ?? 500);
const WARMUP = 200;
const load = (file: string) => import(pathToFileURL(resolve(other, 'services/selector', file)).href);
const A = (await load('selection.ts')) as { select: Select };
const { SnapshotIndex: IndexA } = (await load('snapshot-index.ts')) as { SnapshotIndex: typeof IndexB };

const fleet = syntheticFleet(nodes);
const ia = new IndexA();
const ib = new IndexB();
for (const e of fleet.entries) {
  ia.upsert(e, 0);
  ib.upsert(e, 0);
}
const random = seededRandom(7);
const known = new Map<string, { running: number; reserved: number }>();
for (const e of fleet.entries)
  if (random() < 0.02) known.set(e.id, { running: e.running, reserved: e.reserved + 1 });
const policyFor = (index: IndexB): B.SelectionPolicy => {
  const base = {
    strategy: 'p2c' as const,
    resourceThreshold: 85,
    affinity: true,
    knownLoad: (id: string) => known.get(id),
  };
  if (typeof index.markKnown !== 'function') return { ...base, knownLoadIds: () => known.keys() };
  for (const id of known.keys()) index.markKnown(id);
  return { ...base, knownLoadMarked: true };
};
const pa = policyFor(ia);
const pb = policyFor(ib);
const kinds = REQUEST_KINDS;
const wall = [kinds.map(() => [] as number[]), kinds.map(() => [] as number[])];
const cpu = [kinds.map(() => 0), kinds.map(() => 0)];
let differing = 0;
const draws = () => {
  let i = 0;
  return () => [0.3, 0.7, 0.1, 0.9][i++ % 4]!;
};
const thread = () => {
  const c = process.threadCpuUsage();
  return c.user + c.system;
};
for (let i = 0; i < calls + WARMUP; i++) {
  for (let k = 0; k < kinds.length; k++) {
    const req = kinds[k]!.build(i);
    const c0 = thread();
    const t0 = performance.now();
    const ra = A.select(ia, req, { ...pa, random: draws() });
    const t1 = performance.now();
    const c1 = thread();
    const rb = B.select(ib, req, { ...pb, random: draws() });
    const t2 = performance.now();
    const c2 = thread();
    if (i >= WARMUP) {
      wall[0]![k]!.push((t1 - t0) * 1000);
      wall[1]![k]!.push((t2 - t1) * 1000);
      cpu[0]![k]! += c1 - c0;
      cpu[1]![k]! += c2 - c1;
    }
    if (JSON.stringify(ra) !== JSON.stringify(rb)) differing++;
  }
}
const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
};
const f = (x: number): string => x.toFixed(0).padStart(5);
console.log(
  `${nodes} nodes, ${calls} calls per kind, A = ${other} → B = this tree; results differing: ${differing}`,
);
console.log(`${'request kind'.padEnd(30)}   p50 µs A → B    p99 µs A → B    CPU µs/call A → B`);
for (let k = 0; k < kinds.length; k++) {
  const [wa, wb] = [wall[0]![k]!, wall[1]![k]!];
  console.log(
    `${kinds[k]!.name.padEnd(30)} ${f(q(wa, 0.5))} → ${f(q(wb, 0.5))}   ${f(q(wa, 0.99))} → ${f(q(wb, 0.99))}   ` +
      `${f(cpu[0]![k]! / calls)} → ${f(cpu[1]![k]! / calls)}`,
  );
}
const all = (i: number) => wall[i]!.flat();
const cpuAll = (i: number) => cpu[i]!.reduce((a, b) => a + b, 0) / (calls * kinds.length);
console.log(
  `${'mix'.padEnd(30)} ${f(q(all(0), 0.5))} → ${f(q(all(1), 0.5))}   ${f(q(all(0), 0.99))} → ${f(q(all(1), 0.99))}   ` +
    `${f(cpuAll(0))} → ${f(cpuAll(1))}`,
);
if (differing > 0) process.exitCode = 1;
