/**
 * The error catalog: stable codes, the same on HTTP and WebSocket (PROTOCOL.md lists them;
 * a test checks the two agree). HTTP bodies are `{"error":{"code","message"}}`; WebSocket
 * frames are `{"type":"error","code","message"}`.
 */
export const ERROR_CATALOG = {
  INVALID_MESSAGE: { status: 400, text: 'the message is invalid' },
  INVALID_CAPABILITY_SCHEMA: { status: 400, text: 'unsupported capability_schema_version' },
  NO_GPU_AVAILABLE: { status: 400, text: 'this scheduler requires nodes with a GPU' },
  /** 401 without a valid token; 403 with a node token used for another node. */
  UNAUTHORIZED: { status: 401, text: 'missing or invalid token' },
  NODE_ID_MISMATCH: { status: 400, text: 'node_id differs from the registered one' },
  NOT_REGISTERED: { status: 404, text: 'node is not registered; register again' },
  NOT_FOUND: { status: 404, text: 'not found' },
  STALE_ATTEMPT: { status: 409, text: 'the attempt is not current' },
  RATE_LIMITED: { status: 429, text: 'too many requests; slow down' },
  SCHEDULER_DEPENDENCY_DOWN: { status: 503, text: 'Redis is unreachable; retry later' },
  SHUTTING_DOWN: { status: 503, text: 'this replica is shutting down; use another' },
  NO_AVAILABLE_NODE: { status: 503, text: 'no node can take this job' },
  INTERNAL: { status: 500, text: 'internal error' },
} as const satisfies Record<string, { status: number; text: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** An error with a catalog code; anything thrown with one reaches the client as such. */
export class SwitchboardError extends Error {
  override readonly name = 'SwitchboardError';
  readonly status: number;
  /** Seconds, for 429/503 responses. */
  readonly retryAfterS: number | undefined;
  constructor(
    readonly code: ErrorCode,
    message: string = ERROR_CATALOG[code].text,
    options: { status?: number; retryAfterS?: number } = {},
  ) {
    super(message);
    this.status = options.status ?? ERROR_CATALOG[code].status;
    this.retryAfterS = options.retryAfterS ?? (this.status === 429 || this.status === 503 ? 1 : undefined);
  }
}

/** True for the errors ioredis raises when Redis cannot be reached (or is loading). */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const text = `${err.name} ${err.message}`;
  return /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|LOADING|MaxRetriesPerRequest|Command timed out|CLUSTERDOWN|TRYAGAIN|Failed to refresh slots cache|None of startup nodes is available|ClusterAllFailedError|enableOfflineQueue/i.test(
    text,
  );
}

/**
 * Redis answered but refuses writes for now: out of memory under `maxmemory-policy
 * noeviction` (OOM), a replica not promoted yet (READONLY), a failover (MASTERDOWN), a busy
 * script (BUSY). Retrying later is the right answer, as for an unreachable Redis.
 */
const REDIS_REFUSING: [RegExp, string][] = [
  [/^OOM\b|OOM command not allowed/, 'Redis is out of memory (maxmemory reached); retry later'],
  [/^(READONLY|MASTERDOWN)\b/, 'Redis is failing over (no writable master yet); retry later'],
  [/^BUSY\b/, 'Redis is busy running a script; retry later'],
];

/**
 * True when Redis certainly did NOT run the command: it refused it (cluster down or moving,
 * replica, out of memory, loading, busy) or the client never sent it. A timeout or a connection
 * lost after sending is NOT such an error: the command may have run.
 */
export function commandNotRun(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return /^(CLUSTERDOWN|TRYAGAIN|READONLY|MASTERDOWN|OOM|LOADING|BUSY)\b|Stream isn't writeable|enableOfflineQueue|Too many Cluster redirections|None of startup nodes is available/.test(
    err.message,
  );
}

/** Maps anything thrown to a catalog error; unknown errors become INTERNAL. */
export function toSwitchboardError(err: unknown): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  if (isRedisUnavailable(err)) return new SwitchboardError('SCHEDULER_DEPENDENCY_DOWN');
  const refusing = err instanceof Error && REDIS_REFUSING.find(([pattern]) => pattern.test(err.message));
  if (refusing) return new SwitchboardError('SCHEDULER_DEPENDENCY_DOWN', refusing[1]);
  return new SwitchboardError('INTERNAL');
}

export function httpErrorBody(err: SwitchboardError): { error: { code: ErrorCode; message: string } } {
  return { error: { code: err.code, message: err.message } };
}
