import { pino, type Logger } from 'pino';

export type { Logger };

/** One root logger per process; components take `logger.child({ component })`. */
export function createLogger(service: string, level: string = process.env['LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['token', 'node_token', '*.token', '*.node_token', 'authorization', '*.authorization'],
      remove: true,
    },
  });
}

/**
 * The one line every service writes once ready (PROTOCOL.md "Running the services"):
 * `"msg":"listening"` with `"port"`, whatever LOG_LEVEL says.
 */
export function logListening(log: Logger, fields: Record<string, unknown> & { port: number }): void {
  log.child({}, { level: 'info' }).info(fields, 'listening');
}
