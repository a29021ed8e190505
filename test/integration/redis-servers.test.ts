import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../../scripts/lib/redis-server-process.ts';
import { clusterNodes, clusterSeedNodes, redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';

describe('shared standalone server (globalSetup)', () => {
  const redis = new Redis(redisUrl(), { lazyConnect: true });
  afterAll(() => redis.quit());

  it('answers PING and round-trips a key', async () => {
    expect(redisUrl()).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    const key = `${uniquePrefix('standalone')}:k`;
    await redis.set(key, 'v', 'EX', 60);
    expect(await redis.get(key)).toBe('v');
  });
});

describe('shared 3-master cluster (globalSetup)', () => {
  const cluster = new Cluster(clusterSeedNodes(), { lazyConnect: true });
  afterAll(() => cluster.quit());

  it('exposes three seeds', () => {
    expect(clusterNodes()).toMatch(/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/);
  });

  it('reports cluster_state:ok on every master', async () => {
    for (const { host, port } of clusterSeedNodes()) {
      const node = new Redis({ host, port, lazyConnect: true });
      try {
        await node.connect();
        const info = String(await node.call('CLUSTER', 'INFO'));
        expect(info).toMatch(/^cluster_state:ok\r?$/m);
        expect(info).toMatch(/^cluster_slots_assigned:16384\r?$/m);
        expect(info).toMatch(/^cluster_known_nodes:3\r?$/m);
      } finally {
        node.disconnect();
      }
    }
  });

  it('routes keys in different slots to different masters and reads them back', async () => {
    await cluster.connect();
    const prefix = uniquePrefix('cluster');
    // Hash tags pin each key to one slot; pick tags until we cover all three masters.
    const masters = cluster.nodes('master');
    expect(masters).toHaveLength(3);

    const byMaster = new Map<string, string>();
    for (let i = 0; byMaster.size < 3 && i < 1000; i++) {
      const key = `${prefix}:{tag${i}}:k`;
      const slot = Number(await cluster.call('CLUSTER', 'KEYSLOT', key));
      const owner = await masterForSlot(cluster, slot);
      if (!byMaster.has(owner)) byMaster.set(owner, key);
    }
    expect(byMaster.size).toBe(3);

    for (const [owner, key] of byMaster) await cluster.set(key, owner, 'EX', 60);
    for (const [owner, key] of byMaster) expect(await cluster.get(key)).toBe(owner);

    // And each key really lives on its master (no MOVED), checked with a plain connection.
    for (const [owner, key] of byMaster) {
      const [host = '', port = ''] = owner.split(':');
      const node = new Redis({ host, port: Number(port), lazyConnect: true });
      try {
        await node.connect();
        expect(await node.get(key)).toBe(owner);
      } finally {
        node.disconnect();
      }
    }
  });
});

async function masterForSlot(cluster: Cluster, slot: number): Promise<string> {
  const ranges = (await cluster.call('CLUSTER', 'SLOTS')) as [
    number,
    number,
    [string, number, ...unknown[]],
  ][];
  for (const [from, to, [host, port]] of ranges) {
    if (slot >= from && slot <= to) return `${host}:${port}`;
  }
  throw new Error(`no owner for slot ${slot}`);
}

describe('startRedisServer lifecycle', () => {
  let server: RedisServerHandle | null = null;
  const clients: Redis[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.disconnect());
    await server?.destroy();
    server = null;
  });

  it('stop() then restart() on the same port; a retrying client reconnects', async () => {
    server = await startRedisServer();
    const { port } = server;
    const firstPid = server.pid;
    const client = new Redis(server.url, {
      retryStrategy: () => 50,
      maxRetriesPerRequest: null,
    });
    client.on('error', () => {}); // connection refused while the server is down is expected
    clients.push(client);
    expect(await client.ping()).toBe('PONG');

    await server.stop();
    await waitFor(() => client.status !== 'ready', {
      timeoutMs: 5_000,
      message: 'client noticed the outage',
    });

    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(firstPid);
    expect(server.url).toBe(`redis://127.0.0.1:${port}`);
    expect(await client.ping()).toBe('PONG');
  });

  it('kill() (SIGKILL) then restart(); data is gone (no persistence)', async () => {
    server = await startRedisServer();
    const client = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: null });
    client.on('error', () => {});
    clients.push(client);
    await client.set('k', 'v');

    await server.kill();
    await server.restart();
    expect(await client.get('k')).toBeNull();
  });
});
