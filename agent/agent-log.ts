/** The logging the agent needs; a pino `Logger` (shared/logger.ts) fits. Never given tokens or payloads. */
export interface AgentLog {
  debug(fields: object, msg?: string): void;
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
}

const ignore = (): void => undefined;

export const silentLog: AgentLog = { debug: ignore, info: ignore, warn: ignore, error: ignore };
