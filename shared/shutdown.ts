import type { Logger } from './logger.ts';
import type { RedisClient } from './redis-client.ts';

interface Handler {
  name: string;
  run: () => Promise<void> | void;
}

/**
 * Runs named shutdown handlers in registration order on SIGTERM/SIGINT, within a deadline.
 * Exits 0 when every handler finished in time (PROTOCOL.md "Running the services"), 1 if
 * one failed or the deadline passed.
 */
export class ShutdownManager {
  private readonly handlers: Handler[] = [];
  private started: Promise<void> | null = null;

  constructor(
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  add(name: string, run: Handler['run']): this {
    this.handlers.push({ name, run });
    return this;
  }

  get shuttingDown(): boolean {
    return this.started !== null;
  }

  listen(signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): void {
    for (const signal of signals) {
      process.once(signal, () => {
        this.log.info({ signal }, 'shutting down');
        void this.shutdown().then((ok) => process.exit(ok ? 0 : 1));
      });
    }
  }

  /** Runs the handlers once; resolves true when all completed within the deadline. */
  async shutdown(): Promise<boolean> {
    let ok = true;
    this.started ??= (async () => {
      for (const handler of this.handlers) {
        try {
          await handler.run();
        } catch (err) {
          ok = false;
          this.log.error({ err, handler: handler.name }, 'shutdown handler failed');
        }
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.timeoutMs);
      timer.unref();
    });
    const finished = await Promise.race([this.started.then(() => true), deadline]);
    clearTimeout(timer);
    if (!finished) this.log.error({ timeoutMs: this.timeoutMs }, 'shutdown deadline passed');
    return finished && ok;
  }
}

/** Resolves true when `work` settled within `ms` (it keeps running otherwise). */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A service's close, bounded whatever Redis does: `graceful` (finish in-flight work, close
 * queues and servers) gets `graceMs` while Redis is ready, no time when it is not (its QUITs
 * and BullMQ's closes would wait in offline queues for a Redis that may never come back).
 * Then `force` drops what is left (disconnect: pending commands fail at once), and `graceful`
 * gets one more second to settle. Last, every client is quit (disconnected if it cannot).
 */
export async function closeBounded(options: {
  redis: RedisClient[];
  graceMs: number;
  graceful: () => Promise<unknown>;
  force: () => void;
}): Promise<void> {
  const { redis, graceMs } = options;
  const ready = redis.every((c) => c.status === 'ready');
  const graceful = options.graceful();
  if (!(await settlesWithin(graceful, ready ? graceMs : 0))) {
    options.force();
    for (const client of redis) client.disconnect();
    await settlesWithin(graceful, 1000);
  }
  await quitRedisClients(redis, 500);
}

/** QUIT each ready client within `ms`; one not ready or not answering is disconnected. */
export async function quitRedisClients(clients: RedisClient[], ms: number): Promise<void> {
  await Promise.all(
    clients.map(async (client) => {
      if (client.status === 'end') return;
      if (client.status !== 'ready' || !(await settlesWithin(client.quit(), ms))) client.disconnect();
    }),
  );
}
