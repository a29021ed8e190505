import type { Logger } from './logger.ts';

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
