/**
 * Redis probe of the selector benchmark (a child process, pinned beside the selector): one PING
 * every 10 ms on a connection of its own, the round trip timed — how responsive Redis is as seen
 * from the selector's core, whatever else the job client or core 0 are doing. ~1 % of a core.
 *
 * Commands (IPC): start {redisUrl} · window-start · window-end (returns the window's summary).
 */
import { Redis } from 'ioredis';
import { serveIpc } from '../lib/ipc.ts';
import { summarize, type SampleSummary } from '../lib/stats.ts';

const PING_INTERVAL_MS = 10;

let redis: Redis | null = null;
let samples: number[] | null = null;

function ping(): void {
  const started = performance.now();
  const into = samples;
  redis?.ping().then(
    () => into?.push(performance.now() - started),
    () => undefined,
  );
  setTimeout(ping, PING_INTERVAL_MS);
}

serveIpc(async (cmd, msg) => {
  switch (cmd) {
    case 'start':
      redis = new Redis(String(msg['redisUrl']), { maxRetriesPerRequest: 1, connectionName: 'bench:ping' });
      redis.on('error', () => undefined);
      await redis.ping();
      ping();
      return {};
    case 'window-start':
      samples = [];
      return {};
    case 'window-end': {
      const done = samples ?? [];
      samples = null;
      return done.length ? summarize(done) : null;
    }
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});

export type PingSummary = SampleSummary | null;
