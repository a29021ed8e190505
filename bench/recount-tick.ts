/**
 * The liveness tick's slot recount, worker CPU per tick at fleet size (issue 13): `npx tsx
 * bench/recount-tick.ts [nodes=100000] [jobs=2000]` with REDIS_URL naming a scratch Redis (its
 * keys are left behind). Fills `nodes` node records over 16 shards with `jobs` running jobs
 * whose counters agree, then runs 24 ticks of SlotRecount over every shard, `jobs / 10` new
 * jobs between ticks (what changed), and prints the CPU (process.cpuUsage) and the nodes
 * checked of the first tick and per tick after.
 */
import { KeyBuilder } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import { createMetricsRegistry } from '../shared/metrics.ts';
import { createRedisClient, waitUntilReady } from '../shared/redis-client.ts';
import { loadConfig } from '../shared/config.ts';
import { SlotCountStore } from '../shared/store/snapshot.ts';
import { SlotRecount } from '../services/worker/slot-recount.ts';
import { createWorkerMetrics } from '../services/worker/worker-metrics.ts';

const nodes = Number(process.argv[2] ?? 100_000);
const jobs = Number(process.argv[3] ?? 2_000);
const SHARDS = 16;
const TICKS = 24;
const prefix = `rc${process.pid}`;
const config = loadConfig({ ...process.env, SB_AUTH: 'off', SB_PREFIX: prefix, SB_SHARDS: String(SHARDS) });
const redis = createRedisClient(config, createLogger('bench', 'silent'), { name: 'bench', mode: 'blocking' });
await waitUntilReady(redis);
const keys = new KeyBuilder(prefix, SHARDS);
const id = (i: number) => `rc-node-${i}`;

let p = redis.pipeline();
for (let i = 0; i < nodes; i++) {
  const k = keys.forNode(id(i));
  p.zadd(k.live, i, id(i)).hset(k.node(id(i)), 'status', 'ready', 'reserved', 0, 'committed', 0);
  if (i % 5000 === 4999) {
    await p.exec();
    p = redis.pipeline();
  }
}
await p.exec();
let job = 0;
const run = async (n: number, add: boolean) => {
  const q = redis.pipeline();
  for (let j = 0; j < n; j++) {
    const node = id((job * 7919) % nodes);
    const k = keys.forNode(node);
    const member = `job-${job}|${node}|1`;
    if (add) q.zadd(k.running, Date.now() + 600_000, member).hincrby(k.node(node), 'committed', 1);
    job++;
  }
  await q.exec();
};
await run(jobs, true);

const recount = new SlotRecount(
  new SlotCountStore(redis, keys),
  createWorkerMetrics(createMetricsRegistry('b')),
  {
    sweepTicks: Number(process.env['SWEEP_TICKS'] ?? 120),
  },
);
const cpu: number[] = [];
const checked: number[] = [];
for (let t = 0; t < TICKS; t++) {
  await run(Math.floor(jobs / 10), true); // what changed since the last tick
  const before = process.cpuUsage();
  recount.nextTick();
  let n = 0;
  for (let s = 0; s < SHARDS; s++) n += (await recount.recountShard(s)).checked;
  const used = process.cpuUsage(before);
  cpu.push((used.user + used.system) / 1000);
  checked.push(n);
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const steady = cpu.slice(1);
console.log(
  JSON.stringify({
    nodes,
    jobsAtStart: jobs,
    changedPerTick: Math.floor(jobs / 10),
    firstTick: { cpuMs: cpu[0], checked: checked[0] },
    perTick: {
      cpuMsMean: +mean(steady).toFixed(1),
      cpuMsMax: Math.max(...steady),
      checkedMean: Math.round(mean(checked.slice(1))),
    },
  }),
);
await redis.quit();
