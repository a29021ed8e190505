/**
 * Where the whole gateway's bytes per WebSocket heartbeat go, by allocating function: V8's
 * sampling heap profiler (objects collected by GC included) over the WHOLE GATEWAY stage of
 * bench/alloc.ts. `npx tsx bench/alloc/heap-profile.ts [runs] [perNode] [oneFramePerRead]`.
 */
import { Session } from 'node:inspector/promises';
import { startRedisServer } from '../../scripts/lib/redis-server-process.ts';
import { wholeGateway } from './whole-gateway.ts';

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  id: number;
  children: Node[];
}
interface Sample {
  size: number;
  nodeId: number;
  ordinal: number;
}

const runs = Number(process.argv[2] ?? 40);
const perNode = Number(process.argv[3] ?? 128);
const server = await startRedisServer();
const gw = await wholeGateway(server.url, perNode, runs + 6);
for (let i = 0; i < 5; i++) await gw.run();
const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 32,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
for (let i = 0; i < runs; i++) await gw.run();
const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
  profile: { head: Node; samples: Sample[] };
};
const heartbeats = runs * gw.heartbeats;
// stacks by node id
const parent = new Map<number, Node | null>();
const byId = new Map<number, Node>();
const walk = (n: Node, p: Node | null) => {
  parent.set(n.id, p);
  byId.set(n.id, n);
  for (const c of n.children) walk(c, n);
};
walk(profile.head, null);
const bytes = new Map<number, number>();
for (const s of profile.samples) bytes.set(s.nodeId, (bytes.get(s.nodeId) ?? 0) + s.size);
const short = (n: Node) =>
  `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*\/(node_modules\/|wt-gw\/)?/, '')}:${n.callFrame.lineNumber + 1}`;
const total = [...bytes.values()].reduce((a, b) => a + b, 0);
console.log(`sampled ${Math.round(total / heartbeats)} B per heartbeat over ${heartbeats} heartbeats`);
const rows: [string, number][] = [];
for (const [id, b] of bytes) {
  const chain: string[] = [];
  for (
    let n: Node | null | undefined = byId.get(id);
    n && chain.length < Number(process.env.DEPTH ?? 4);
    n = parent.get(n.id)
  )
    chain.push(short(n));
  rows.push([chain.join(' < '), b]);
}
const merged = new Map<string, number>();
for (const [k, b] of rows) merged.set(k, (merged.get(k) ?? 0) + b);
for (const [k, b] of [...merged].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40)))
  console.log(`${String(Math.round(b / heartbeats)).padStart(6)} B  ${k}`);
session.disconnect();
await gw.close();
await server.destroy();
