import { createHash } from 'node:crypto';
import { z } from 'zod';
import { redactRedisUrl } from './redis-reachability.ts';

/**
 * Every environment variable Switchboard reads, with its default. Parsed once at boot by
 * `loadConfig`; a bad environment fails with every bad variable listed at once.
 * The README configuration table mirrors this schema (a test checks that).
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'on', 'off', 'yes', 'no'])
  .transform((v) => ['true', '1', 'on', 'yes'].includes(v));
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
/**
 * A comma-separated list of secrets (rotation: the first is the current one, every one is
 * accepted). With `labelled`, an entry may be `<tenant>:<key>`. Messages never echo a value.
 */
const secretList = (min: number, labelled = false) =>
  z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()))
    .refine((list) => list.every((s) => (labelled ? splitLabel(s).key : s).length >= min), {
      message: `every comma-separated entry must be at least ${min} characters`,
    })
    .refine((list) => !labelled || list.every((s) => TENANT_PATTERN.test(splitLabel(s).tenant ?? 'x')), {
      message: 'a tenant label (before ":") must be 1-64 of [A-Za-z0-9._-]',
    });

export const envSchema = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^,\s]+:\d+(,[^,\s]+:\d+)*$/, 'expected comma-separated host:port list')
    .optional(),
  SB_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 of [A-Za-z0-9_.-]')
    .default('sb'),
  SB_SHARDS: int(1, 4096).default(16),
  PORT: int(0, 65535).optional(),
  HOST: z.string().default('0.0.0.0'),
  SB_AUTH: z.enum(['on', 'off']).default('on'),
  SB_JOIN_TOKEN: z.string().min(8).optional(),
  SB_NODE_TOKEN_SECRET: z.string().min(16).optional(),
  SB_API_KEY: z.string().min(8).optional(),
  SB_JOIN_TOKENS: secretList(8).optional(),
  SB_NODE_TOKEN_SECRETS: secretList(16).optional(),
  SB_API_KEYS: secretList(8, true).optional(),
  SB_ADMIN_API_KEYS: secretList(8, true).optional(),
  SB_NODE_TOKEN_TTL_MS: int(1000).default(86_400_000),
  SB_JOIN_REREGISTER: z.enum(['offline', 'refuse']).default('offline'),
  SB_HEARTBEAT_INTERVAL_MS: int(100).default(15000),
  SB_NODE_TTL_MS: int(100).default(45000),
  SB_HEARTBEAT_REORDER_MS: int(0).default(5000),
  SB_ACK_TIMEOUT_MS: int(100).default(10000),
  SB_JOB_TIMEOUT_MS: int(100).default(60000),
  SB_MAX_JOB_TIMEOUT_MS: int(1000).default(300000),
  SB_SESSION_TTL_MS: int(1000).default(600000),
  SB_MAX_ATTEMPTS: int(1, 100).default(3),
  SB_DEFAULT_MAX_JOBS: int(1, 10000).default(4),
  SB_REQUIRE_GPU: bool.default(true),
  SB_RESOURCE_THRESHOLD: int(1, 100).default(85),
  SB_SELECT_STRATEGY: z.enum(['p2c', 'least_loaded', 'random']).default('p2c'),
  SB_WS_RATE_LIMIT: int(1).default(50),
  SB_MAX_MESSAGE_BYTES: int(1024, 64 * 1024 * 1024).default(262144),
  SB_LOAD_CHANGE_THRESHOLD: int(0, 100).default(5),
  SB_SNAPSHOT_MAX_AGE_MS: int(100).default(30000),
  SB_FLUSH_DELAY_MS: int(0, 10000).default(25),
  SB_UNHEALTHY_HEARTBEATS: int(1, 1000).default(3),
  SB_MAX_INFLIGHT: int(1).default(4096),
  SB_WS_MAX_QUEUED: int(1).default(64),
  SB_WS_REGISTER_TIMEOUT_MS: int(100).default(10000),
  SB_WS_REGISTER_WAIT_MS: int(0, 60000).default(5000),
  SB_WS_PING_INTERVAL_MS: int(0).default(30000),
  SB_HTTP_HEADERS_TIMEOUT_MS: int(100).default(10000),
  SB_HTTP_REQUEST_TIMEOUT_MS: int(100).default(30000),
  SB_MAX_CONNECTIONS: int(1).default(20000),
  SB_SHUTDOWN_TIMEOUT_MS: int(100).default(10000),
  SB_GATEWAY_PROCESSES: int(0, 1024).default(0),
  SB_REDIS_COMMAND_TIMEOUT_MS: int(0, 600_000).default(2000),
  SB_REAPER_INTERVAL_MS: int(100).default(5000),
  SB_NODE_RETENTION_MS: int(1000).default(86_400_000),
  SB_FLUSH_BATCH: int(1, 100_000).default(500),
  SB_DELTA_STREAM_LEN: int(100).default(10_000),
  SB_DELTA_WINDOW_MS: int(1000).default(10_000),
  SB_WORKER_CONCURRENCY: int(1, 1000).default(8),
  SB_FAULT_FLUSH_PAUSE_MS: int(0).default(0),
  SB_FAULT_PLACE_PAUSE_MS: int(0).default(0),
  SB_AFFINITY: bool.default(true),
  SB_RESERVATION_ATTEMPTS: int(1, 100).default(8),
  SB_JOB_RETENTION_MS: int(1000).default(86_400_000),
  SB_INBOX_LEN: int(10).default(1000),
  SB_QUARANTINE_FAULTS: int(0, 1000).default(3),
  SB_QUARANTINE_WINDOW_MS: int(100).default(60_000),
  SB_QUARANTINE_BASE_MS: int(100).default(30_000),
  SB_QUARANTINE_MAX_MS: int(100).default(600_000),
  SB_CONSOLE_SESSION_TTL_MS: int(60_000).default(28_800_000),
  SB_CONSOLE_LOGIN_RATE: int(0, 10_000).default(10),
  SB_JAEGER_URL: z.string().url().optional(),
  SB_CONSOLE_DIR: z.string().min(1).optional(),
  SB_MAX_JOB_WAITERS: int(1).default(10_000),
  SB_JOB_EVENTS_FALLBACK_MS: int(50, 60_000).default(1000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.infer<typeof envSchema>;

export const TENANT_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** `tenant:key` → both; a bare key → no tenant. */
function splitLabel(entry: string): { tenant: string | null; key: string } {
  const colon = entry.indexOf(':');
  return colon < 0
    ? { tenant: null, key: entry }
    : { tenant: entry.slice(0, colon), key: entry.slice(colon + 1) };
}

/** An API key and the tenant its jobs belong to. */
export interface ApiKey {
  key: string;
  tenant: string;
}

export interface AuthConfig {
  enabled: boolean;
  /** Every accepted join token (SB_JOIN_TOKENS, then SB_JOIN_TOKEN). */
  joinTokens: string[];
  /** Node-token secrets: the first signs, every one verifies. */
  nodeTokenSecrets: string[];
  nodeTokenTtlMs: number;
  /** Who may re-register a known node id with a join token (README "Credentials"). */
  joinReregister: 'offline' | 'refuse';
  /** Client keys (SB_API_KEYS, then SB_API_KEY as tenant `default`). */
  apiKeys: ApiKey[];
  /** Admin keys: the admin routes, and everything a client key may do. */
  adminKeys: ApiKey[];
}

export interface Config {
  env: Env;
  redis: { url: string; clusterNodes: { host: string; port: number }[] | null };
  prefix: string;
  shards: number;
  auth: AuthConfig;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Names whose values are secrets: never echoed, only their length (REDIS_URL: its password masked). */
const SECRET_NAME = /TOKEN|SECRET|KEY|PASSWORD|PASS\b/i;

/** A configuration value as a configuration error may show it. */
function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return 'nothing';
  if (SECRET_NAME.test(name)) return `${value.length} characters, not shown`;
  if (name === 'REDIS_URL') return JSON.stringify(redactRedisUrl(value));
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

export type ServiceName = 'gateway' | 'worker' | 'selector';

/**
 * The secrets each service checks when `SB_AUTH=on`, and so requires: the gateway
 * authenticates nodes (join token, node tokens), the selector its API clients (API key); the
 * worker talks to Redis only.
 */
export const REQUIRED_SECRETS = {
  gateway: ['SB_JOIN_TOKEN', 'SB_NODE_TOKEN_SECRET'],
  selector: ['SB_API_KEY'],
  worker: [],
} as const satisfies Record<ServiceName, readonly (keyof Env)[]>;

/** A required secret is also satisfied by its list (rotation) form. */
const SECRET_LISTS: Partial<Record<keyof Env, keyof Env>> = {
  SB_JOIN_TOKEN: 'SB_JOIN_TOKENS',
  SB_NODE_TOKEN_SECRET: 'SB_NODE_TOKEN_SECRETS',
  SB_API_KEY: 'SB_API_KEYS',
};

/**
 * Parses and validates the environment; throws ConfigError listing every bad variable. With
 * `service`, only that service's secrets are required; without, every service's (a
 * configuration any of them can start with).
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, service?: ServiceName): Config {
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = source[key];
    if (value !== undefined && value !== '') relevant[key] = value;
  }
  const parsed = envSchema.safeParse(relevant);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(
        `${issue.path.join('.')}: ${issue.message} (got ${shownValue(String(issue.path[0]), relevant[String(issue.path[0])])})`,
      );
    }
  }
  // Checked on the raw values, so a missing secret is listed with the schema's problems.
  const auth = relevant['SB_AUTH'] !== 'off';
  if (auth) {
    const who = service ? ` by the ${service}` : '';
    const required = service ? REQUIRED_SECRETS[service] : Object.values(REQUIRED_SECRETS).flat();
    for (const name of required) {
      const list = SECRET_LISTS[name];
      if (!relevant[name] && !(list && relevant[list]))
        problems.push(`${name}: required${who} when SB_AUTH=on (set SB_AUTH=off only for local development)`);
    }
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const env = parsed.data;
  const clusterNodes = env.REDIS_CLUSTER_NODES
    ? env.REDIS_CLUSTER_NODES.split(',').map((seed) => {
        const at = seed.lastIndexOf(':');
        return { host: seed.slice(0, at), port: Number(seed.slice(at + 1)) };
      })
    : null;
  return {
    env,
    redis: { url: env.REDIS_URL, clusterNodes },
    prefix: env.SB_PREFIX,
    shards: env.SB_SHARDS,
    auth: {
      enabled: auth,
      joinTokens: [...(env.SB_JOIN_TOKENS ?? []), ...(env.SB_JOIN_TOKEN ? [env.SB_JOIN_TOKEN] : [])],
      nodeTokenSecrets: [
        ...(env.SB_NODE_TOKEN_SECRETS ?? []),
        ...(env.SB_NODE_TOKEN_SECRET ? [env.SB_NODE_TOKEN_SECRET] : []),
      ],
      nodeTokenTtlMs: env.SB_NODE_TOKEN_TTL_MS,
      joinReregister: env.SB_JOIN_REREGISTER,
      apiKeys: [
        ...apiKeys(env.SB_API_KEYS ?? [], null),
        ...(env.SB_API_KEY ? [{ key: env.SB_API_KEY, tenant: 'default' }] : []),
      ],
      adminKeys: apiKeys(env.SB_ADMIN_API_KEYS ?? [], 'admin'),
    },
  };
}

/**
 * Labelled entries belong to their tenant; an unlabelled one to `fallback`, or (null) to a
 * tenant of its own named after a digest of the key (label keys to rotate them).
 */
function apiKeys(entries: string[], fallback: string | null): ApiKey[] {
  return entries.map((entry) => {
    const { tenant, key } = splitLabel(entry);
    return {
      key,
      tenant: tenant ?? fallback ?? `key-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`,
    };
  });
}
