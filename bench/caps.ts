/**
 * What one node at the capability caps (PROTOCOL.md "Limits") costs, end to end on a real Redis
 * and the real services (in one process): the gateway's validation, the Redis scripts its
 * registration and the snapshot flush run (SLOWLOG durations: time Redis is blocked), and a selector
 * replica's index update (time its event loop is blocked). `npx tsx bench/caps.ts [codes]`
 * (default 64: any_to_any over 64 codes = 4,032 pairs, 4,096 pools).
 */
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { startRedisServer } from '../scripts/lib/redis-server-process.ts';
import { startGateway } from '../services/gateway/main.ts';
import { startWorker } from '../services/worker/main.ts';
import { SnapshotIndex } from '../services/selector/snapshot-index.ts';
import { capabilityPart } from '../shared/capability-digest.ts';
import { loadConfig } from '../shared/config.ts';
import { KeyBuilder } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import { nodeRegisterSchema } from '../shared/protocol/node-messages.ts';
import { attachLang, decodeEntry, decodeLangBlob, type SnapshotEntry } from '../shared/snapshot-entry.ts';

const n = Number(process.argv[2] ?? 64);
const codes = Array.from({ length: n }, (_, i) => `x${i}`);
const lang = {
  asr_languages: codes,
  tts_languages: codes,
  nmt_capabilities: [{ model_id: 'm2m', languages: codes, rule: 'any_to_any' }],
};
const register = {
  type: 'node_register',
  node_id: 'caps-bench',
  version: '1',
  platform: 'linux',
  hardware: { cpu_cores: 8, memory_gb: 32, gpus: [{ name: 'g', memory_gb: 24 }] },
  installed_models: [],
  capability_by_type: [
    { type: 'asr', ready: true },
    { type: 'nmt', ready: true },
    { type: 'tts', ready: true },
  ],
  features_supported: {},
  accept_public_jobs: true,
  language_capabilities: lang,
};
const ms = (t: number) => `${(performance.now() - t).toFixed(2)} ms`;

const best = (f: () => void, runs = 5) => {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    min = Math.min(min, performance.now() - t);
  }
  return `${min.toFixed(2)} ms (best of ${runs})`;
};
console.log(`node: any_to_any over ${n} codes; frame ${JSON.stringify(register).length} bytes`);
console.log(
  `gateway validation (zod + derived-pair cap): ${best(() => nodeRegisterSchema.safeParse(register))}`,
);
console.log(`gateway canonical form + digest of language_capabilities: ${best(() => capabilityPart(lang))}`);
const worst = {
  ...register,
  language_capabilities: {
    ...lang,
    nmt_capabilities: Array.from({ length: 64 }, () => lang.nmt_capabilities[0]),
  },
};
console.log(
  `worst accepted validation (64 identical nmt entries): ${best(() => nodeRegisterSchema.safeParse(worst))}`,
);

const redisServer = await startRedisServer();
const config = loadConfig({
  REDIS_URL: redisServer.url,
  SB_AUTH: 'off',
  PORT: '0',
  HOST: '127.0.0.1',
  SB_FLUSH_DELAY_MS: '0',
  SB_MAX_MESSAGE_BYTES: String(4 * 1024 * 1024),
});
const log = createLogger('caps-bench', 'silent');
const gateway = await startGateway(config, log);
const worker = await startWorker(config, log);
const redis = new Redis(redisServer.url);
const keys = new KeyBuilder(config.prefix, config.shards);
await redis.config('SET', 'slowlog-log-slower-than', '0');
await redis.config('SET', 'slowlog-max-len', '100000');
await redis.slowlog('RESET');

const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/ws/node`);
await new Promise((r) => ws.once('open', r));
const t0 = performance.now();
ws.send(JSON.stringify(register));
await new Promise((r) => ws.once('message', r));
console.log(`register round trip (WebSocket): ${ms(t0)}`);
const k = keys.forNode('caps-bench');
/** The published entry, its languages attached from the shard's caps hash (as a selector does). */
async function published(): Promise<SnapshotEntry | null> {
  const text = await redis.hget(k.checkpoint, 'caps-bench');
  const decoded = text ? decodeEntry(JSON.parse(text), 'caps-bench') : null;
  if (!decoded) return null;
  if (decoded.byDigest)
    attachLang(decoded.entry, decodeLangBlob((await redis.hget(k.caps, decoded.entry.langDigest)) ?? ''));
  return decoded.entry;
}
const pools = async () => (await published())?.pools.length ?? 0;
const t1 = performance.now();
while ((await pools()) === 0) await new Promise((r) => setTimeout(r, 5));
console.log(`pools published: ${await pools()} after ${ms(t1)}`);

const slow = (await redis.slowlog('GET', 100000)) as [number, number, number, string[]][];
const byCommand = new Map<string, number>();
for (const [, , micros, args] of slow) {
  const name =
    args[0] === 'evalsha' || args[0] === 'EVALSHA' ? `script(${args.length} args)` : String(args[0]);
  byCommand.set(name, Math.max(byCommand.get(name) ?? 0, micros));
}
const top = [...byCommand.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
console.log('longest Redis commands (SLOWLOG, µs):', top.map(([c, us]) => `${c} ${us}`).join(', '));

let entry: SnapshotEntry | null = null;
while (!entry) {
  entry = await published();
}
const index = new SnapshotIndex();
const e = entry;
console.log(
  `selector replica index upsert (event loop blocked), first: ${best(() => new SnapshotIndex().upsert(e, k.shard), 1)}`,
);
console.log(`selector replica index upsert, cached profile: ${best(() => index.upsert(e, k.shard))}`);
console.log(
  `selector index size: ${[...index.keys('pool')].length} pools, heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB (whole process)`,
);

ws.close();
await worker.close();
await gateway.close();
await redis.quit();
await redisServer.destroy();
