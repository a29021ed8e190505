/**
 * Where the gateway's bytes go per heartbeat: each stage of the heartbeat path run in this one
 * process, N times between two reads of V8's used heap with no GC in between (checked with
 * v8.GCProfiler; a run with a GC is retried), so bytes ÷ N is what one heartbeat allocates in
 * that stage. Real parts: the bench's frozen heartbeat frame, the gateway's own functions and
 * its Redis client against a `redis-server` started here. `npx tsx bench/alloc.ts` (~10 s).
 * Its last lines are the whole gateway in process (bench/alloc/whole-gateway.ts): bytes, then
 * CPU µs per heartbeat of this process and of redis-server (a ratio CPU can say on a loaded
 * machine where rates cannot).
 */
import { spawnSync } from 'node:child_process';
import v8 from 'node:v8';

const FLAGS = ['--expose-gc', '--max-semi-space-size=256', '--min-semi-space-size=256'];
if (typeof globalThis.gc !== 'function') {
  // re-run with the flags: a big young generation, so that N calls fit between two GCs
  const res = spawnSync(process.execPath, [...FLAGS, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(res.status ?? 1);
}

const { stages } = await import('./alloc/stages.ts');
const N = 2000;

function usedHeap(): number {
  return v8.getHeapStatistics().used_heap_size;
}

/** Bytes allocated per call of `fn` (sync or async), the smallest of 5 GC-free runs of N. */
async function perCall(fn: () => unknown, calls = N): Promise<number> {
  for (let i = 0; i < calls; i++) await fn();
  let best = Infinity;
  for (let run = 0, clean = 0; run < 20 && clean < 5; run++) {
    globalThis.gc!();
    const profiler = new v8.GCProfiler();
    profiler.start();
    const before = usedHeap();
    for (let i = 0; i < calls; i++) {
      const r = fn();
      if (r instanceof Promise) await r;
    }
    const after = usedHeap();
    if (profiler.stop().statistics.length > 0) continue;
    clean++;
    best = Math.min(best, (after - before) / calls);
  }
  return best;
}

const probe = await stages();
console.log(`heartbeat frame: ${probe.frameBytes} bytes; N = ${N} calls per run, best of 5 GC-free runs\n`);
for (const stage of probe.list) {
  const per = stage.per ?? 1;
  const bytes = (await perCall(stage.fn, stage.calls ?? Math.ceil(N / per))) / per;
  console.log(`${stage.name.padEnd(66)} ${String(Math.round(bytes)).padStart(6)} B`);
}
const cpu = await probe.cpu(40);
console.log(
  `\nWHOLE GATEWAY CPU per WebSocket heartbeat (${cpu.heartbeats} heartbeats, this machine's load ` +
    `included): gateway ${cpu.gatewayUs.toFixed(1)} µs, redis-server ${cpu.redisUs?.toFixed(1) ?? '—'} µs`,
);
await probe.close();
