/**
 * Reading docker-compose.yml (and the other deployment files) the way Compose does, for the unit
 * tests that check them without a Docker engine: YAML with `<<` merge keys, and `${…}`
 * interpolation from a given set of variables.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { parseDocument } from 'yaml';

export const ROOT = new URL('../../', import.meta.url);
export const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

export interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}
export type Port = string | number | { target?: number; published?: number | string; host_ip?: string };
export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: Healthcheck;
  depends_on?: string[] | Record<string, { condition?: string }>;
  volumes?: (string | { source?: string; target?: string })[];
  ports?: Port[];
}
export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** YAML with `<<` merge keys (as Compose reads it); any error or warning fails the test. */
export function parseYaml(path: string): unknown {
  const doc = parseDocument(read(path), { merge: true, prettyErrors: true });
  expect(doc.errors.map(String), `${path} errors`).toEqual([]);
  expect(doc.warnings.map(String), `${path} warnings`).toEqual([]);
  return doc.toJS({ maxAliasCount: 1000 });
}

/** The secrets docker-compose.yml requires (no defaults) and values of the right shape for tests. */
export const SECRETS = [
  'SB_JOIN_TOKEN',
  'SB_NODE_TOKEN_SECRET',
  'SB_API_KEY',
  'SB_ADMIN_API_KEYS',
  'GRAFANA_ADMIN_PASSWORD',
] as const;
export const TEST_SECRETS: Record<(typeof SECRETS)[number], string> = {
  SB_JOIN_TOKEN: 'test-join-token-0123456789',
  SB_NODE_TOKEN_SECRET: 'test-node-token-secret-0123456789abcdef',
  SB_API_KEY: 'test-api-key-0123456789',
  SB_ADMIN_API_KEYS: 'test-admin-key-0123456789',
  GRAFANA_ADMIN_PASSWORD: 'test-grafana-password-0123',
};

/** One `${…}` of a Compose file: `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`. */
export interface Interpolation {
  text: string;
  name: string;
  operator: '' | ':-' | '-' | ':?' | '?';
  argument: string;
}

const INTERPOLATION = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g;

export function interpolations(text: string): Interpolation[] {
  return [...text.replace(/\$\$/g, '').matchAll(INTERPOLATION)].map((m) => ({
    text: m[0],
    name: m[1]!,
    operator: (m[2] ?? '') as Interpolation['operator'],
    argument: m[3] ?? '',
  }));
}

/**
 * Compose interpolation with `vars` set: `${X:-d}` gives d when X is unset or empty, `${X-d}` when
 * unset, `${X:?m}` / `${X?m}` throw m, `${X}` gives '' when unset, and `$$` is a `$`.
 */
export function interpolate(value: string, vars: Record<string, string>): string {
  return value
    .split('$$')
    .map((part) =>
      part.replace(INTERPOLATION, (_match, name: string, operator?: string, argument?: string) => {
        const current = vars[name] ?? '';
        const missing = operator?.startsWith(':') ? current === '' : !Object.hasOwn(vars, name);
        if (operator?.endsWith('?') && missing) throw new Error(`${name}: ${argument ?? ''}`);
        if (operator?.endsWith('-') && missing) return argument ?? '';
        return current;
      }),
    )
    .join('$');
}

/** A service's environment, interpolated with `vars` (by default: the required secrets set). */
export function environment(
  service: ComposeService,
  vars: Record<string, string> = TEST_SECRETS,
): Record<string, string> {
  const env = service.environment ?? {};
  const pairs: [string, string][] = Array.isArray(env)
    ? env.map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, ''] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(pairs.map(([k, v]) => [k, interpolate(v, vars)]));
}

export function argv(command: string | string[] | undefined): string[] {
  if (command === undefined) return [];
  return Array.isArray(command) ? command.map(String) : command.trim().split(/\s+/);
}

/** A published port as `{ hostIp, published, target }` (short `[ip:]published:target[/proto]` or long syntax). */
export function publishedPort(
  port: Port,
  vars: Record<string, string> = {},
): { hostIp: string; published: string; target: string } {
  if (typeof port === 'object')
    return {
      hostIp: interpolate(port.host_ip ?? '', vars),
      published: interpolate(String(port.published ?? ''), vars),
      target: String(port.target ?? ''),
    };
  const parts = interpolate(String(port), vars)
    .replace(/\/(tcp|udp)$/, '')
    .split(':');
  const target = parts.pop() ?? '';
  const published = parts.pop() ?? '';
  return { hostIp: parts.join(':'), published, target };
}
