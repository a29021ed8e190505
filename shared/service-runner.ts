import { pathToFileURL } from 'node:url';
import { BUILD_INFO } from './build-info.ts';
import { ConfigError, loadConfig, REQUIRED_SECRETS, type Config, type ServiceName } from './config.ts';
import { createLogger, logListening, type Logger } from './logger.ts';
import { isClusterChild, runPrimary } from './process-cluster.ts';
import { ShutdownManager } from './shutdown.ts';
import { shutdownTelemetry } from './telemetry.ts';

export interface RunningService {
  port: number;
  close(): Promise<void>;
}

/**
 * The process around a service's composition root: parse the configuration once (exit 78
 * listing every bad variable), start (which waits for Redis as long as it takes), announce
 * `"msg":"listening"` with the port and the build, and shut down gracefully on SIGTERM/SIGINT.
 * Runs only when `moduleUrl` is the process's entry point, so tests can import the same
 * `start` function.
 */
export function runService(
  moduleUrl: string,
  name: ServiceName,
  start: (config: Config, log: Logger) => Promise<RunningService>,
  /** How many processes serve the port (process-cluster.ts); 1 without. */
  processes?: (config: Config) => number,
): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? '').href) return;
  const log = createLogger(name);
  const run = async () => {
    let config: Config;
    try {
      config = loadConfig(process.env, name);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      log.fatal({ problems: err.problems }, err.message);
      process.exit(78);
    }
    log.level = config.env.LOG_LEVEL;
    const count = processes?.(config) ?? 1;
    if (count > 1 && !isClusterChild()) {
      // the primary: forks `count` processes of this entry point; connects to nothing itself
      runPrimary({
        processes: count,
        shutdownTimeoutMs: config.env.SB_SHUTDOWN_TIMEOUT_MS,
        log,
        onListening: (port) =>
          logListening(log, {
            port,
            processes: count,
            shards: config.shards,
            prefix: config.prefix,
            auth: config.auth.enabled,
            version: BUILD_INFO.version,
            node: BUILD_INFO.node,
          }),
      });
      return;
    }
    if (!config.auth.enabled && REQUIRED_SECRETS[name].length > 0)
      log.warn('SB_AUTH=off: no token or API key is checked. Use only for local development.');
    const shutdown = new ShutdownManager(log, config.env.SB_SHUTDOWN_TIMEOUT_MS);
    shutdown.listen();
    const service = await start(config, log);
    shutdown.add(name, () => service.close());
    shutdown.add('telemetry', () => shutdownTelemetry()); // last: the spans of closing too
    logListening(log, {
      port: service.port,
      shards: config.shards,
      prefix: config.prefix,
      auth: config.auth.enabled,
      version: BUILD_INFO.version,
      node: BUILD_INFO.node,
    });
  };
  run().catch(async (err: unknown) => {
    const { code, address, port } = (err ?? {}) as { code?: string; address?: string; port?: number };
    if (code === 'EADDRINUSE' || code === 'EACCES')
      log.fatal(
        `${name} cannot listen on ${address ?? ''}:${port ?? ''} (${code}): set PORT to a free port (PORT=0: any free one) or stop what holds it`,
      );
    else log.fatal({ err }, `${name} failed to start`);
    await shutdownTelemetry();
    process.exit(1);
  });
}
