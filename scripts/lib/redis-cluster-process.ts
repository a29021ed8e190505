/**
 * Forms a Redis Cluster of real `redis-server` processes (redis-server-process.ts) for tests:
 * masters (slots assigned evenly) and optionally replicas of each, formed with ioredis
 * (ADDSLOTSRANGE + MEET + REPLICATE), no redis-cli needed.
 */
import { Redis } from 'ioredis';
import { findFreePort, HOST } from './local-ports.ts';
import { startServer, type RedisServerHandle } from './redis-server-process.ts';

const CLUSTER_DEADLINE_MS = 30_000;
const CLUSTER_SLOTS = 16384;

export interface RedisClusterOptions {
  /** Number of masters. Default 3. */
  masters?: number;
  /** Replicas per master (they take over when it fails: cluster-node-timeout 2 s). Default 0. */
  replicas?: number;
}

export interface RedisClusterHandle {
  nodes: { host: string; port: number }[];
  /** `"127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"` (the REDIS_CLUSTER_NODES format). */
  seeds: string;
  /** The underlying per-node servers (e.g. to kill one): the masters, then the replicas. */
  servers: RedisServerHandle[];
  /** `replicaOf[i]`: index in `servers` of the master replica `servers[masters + i]` follows. */
  replicaOf: number[];
  /** Stops every node and removes their temp dirs. */
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** Empty string if this node sees a healthy, fully meshed cluster; else the reason. */
async function clusterProblem(client: Redis, known: number): Promise<string> {
  const info = parseInfo(String(await client.call('CLUSTER', 'INFO')));
  if (info.get('cluster_state') !== 'ok') return `cluster_state:${info.get('cluster_state')}`;
  if (info.get('cluster_slots_assigned') !== String(CLUSTER_SLOTS))
    return `cluster_slots_assigned:${info.get('cluster_slots_assigned')}`;
  if (info.get('cluster_slots_ok') !== String(CLUSTER_SLOTS))
    return `cluster_slots_ok:${info.get('cluster_slots_ok')}`;
  if (info.get('cluster_known_nodes') !== String(known))
    return `cluster_known_nodes:${info.get('cluster_known_nodes')}`;
  const nodes = String(await client.call('CLUSTER', 'NODES'))
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  for (const n of nodes) {
    const [id, , flags = '', , , , , link = ''] = n;
    if (/handshake|noaddr|fail/.test(flags) || link !== 'connected')
      return `node ${id} flags=${flags} link=${link}`;
  }
  return '';
}

/**
 * Starts `masters` (default 3) cluster-enabled redis-servers on free ports (bus ports picked
 * explicitly with `--cluster-port`), assigns the 16384 slots evenly, MEETs them and waits until
 * every node reports `cluster_state:ok` with all slots assigned (deadline 30 s).
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 1) throw new Error(`masters must be a positive integer`);
  const replicas = opts.replicas ?? 0;
  const total = masters * (1 + replicas);
  const replicaOf = Array.from({ length: masters * replicas }, (_, i) => i % masters);

  const busPorts = new Map<number, number>();
  const settled = await Promise.allSettled(
    Array.from({ length: total }, () =>
      startServer({
        argsForPort: async (port) => {
          const bus = await findFreePort();
          busPorts.set(port, bus);
          return [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '2000',
            '--cluster-port',
            String(bus),
          ];
        },
      }),
    ),
  );
  const servers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.destroy()));
  };
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stopAll();
    throw failed.reason;
  }

  const clients = servers.map(
    (s) => new Redis({ host: HOST, port: s.port, lazyConnect: true, maxRetriesPerRequest: 1 }),
  );
  try {
    await Promise.all(clients.map((c) => c.connect()));
    await Promise.all(
      clients.slice(0, masters).map(async (c, i) => {
        const first = Math.floor((i * CLUSTER_SLOTS) / masters);
        const last = Math.floor(((i + 1) * CLUSTER_SLOTS) / masters) - 1;
        // Distinct config epochs up front, so no epoch-collision dance is needed (like redis-cli does).
        await c.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1));
        await c.call('CLUSTER', 'ADDSLOTSRANGE', String(first), String(last));
      }),
    );
    const [seed] = clients;
    if (!seed) throw new Error('no cluster nodes');
    for (const s of servers.slice(1)) {
      await seed.call('CLUSTER', 'MEET', HOST, String(s.port), String(busPorts.get(s.port)));
    }

    const deadline = Date.now() + CLUSTER_DEADLINE_MS;
    if (replicas > 0) {
      const ids = await Promise.all(clients.slice(0, masters).map((c) => c.call('CLUSTER', 'MYID')));
      for (const [i, master] of replicaOf.entries()) {
        // a replica can follow its master only once it knows it (MEET propagates by gossip)
        for (;;) {
          try {
            await clients[masters + i]!.call('CLUSTER', 'REPLICATE', String(ids[master]));
            break;
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await sleep(100);
          }
        }
      }
    }
    for (;;) {
      const problems = await Promise.all(
        clients.map(async (c, i) => {
          const p = await clusterProblem(c, total).catch((e: unknown) => String(e));
          return p ? `${servers[i]?.port}: ${p}` : '';
        }),
      );
      const bad = problems.filter(Boolean);
      if (bad.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `Redis cluster did not converge within ${CLUSTER_DEADLINE_MS} ms:\n  ${bad.join('\n  ')}\n` +
            `logs: ${servers.map((s) => s.logFile).join(', ')}`,
        );
      }
      await sleep(100);
    }
  } catch (err) {
    await stopAll();
    throw err;
  } finally {
    clients.forEach((c) => c.disconnect());
  }

  const nodes = servers.map((s) => ({ host: HOST, port: s.port }));
  return {
    nodes,
    seeds: nodes.map((n) => `${n.host}:${n.port}`).join(','),
    servers,
    replicaOf,
    stop: stopAll,
  };
}
