import { pino, type Logger, type LoggerOptions } from 'pino';
import { traceLogFields } from './telemetry.ts';

export type { Logger };

/**
 * The options of every service's logger: JSON lines with `service` and `pid`, ISO time, secrets
 * removed, and `trace_id` / `span_id` of the active span on every line written inside one
 * (README "Tracing"), so a log line leads to its trace.
 */
export function loggerOptions(
  service: string,
  level: string = process.env['LOG_LEVEL'] ?? 'info',
): LoggerOptions {
  return {
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => traceLogFields(),
    redact: {
      paths: ['token', 'node_token', '*.token', '*.node_token', 'authorization', '*.authorization'],
      remove: true,
    },
  };
}

/** One root logger per process; components take `logger.child({ component })`. */
export function createLogger(service: string, level: string = process.env['LOG_LEVEL'] ?? 'info'): Logger {
  return pino(loggerOptions(service, level));
}

/**
 * The one line every service writes once ready (PROTOCOL.md "Running the services"):
 * `"msg":"listening"` with `"port"`, whatever LOG_LEVEL says.
 */
export function logListening(log: Logger, fields: Record<string, unknown> & { port: number }): void {
  log.child({}, { level: 'info' }).info(fields, 'listening');
}
