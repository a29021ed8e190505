import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  argv,
  type ComposeFile,
  environment,
  interpolations,
  parseYaml,
  type Port,
  publishedPort,
  read,
  ROOT,
  SECRETS,
  TEST_SECRETS,
} from '../support/compose.ts';

/**
 * What docker-compose.yml promises an operator: secrets without defaults, ports on 127.0.0.1
 * unless SB_BIND_ADDRESS / SB_OPS_BIND_ADDRESS say otherwise, pinned images, a health check on
 * every service; and that Compose itself accepts the file (`docker-compose config`, which needs
 * no Docker engine).
 */

const text = read('docker-compose.yml');
const compose = parseYaml('docker-compose.yml') as ComposeFile;
const services = Object.entries(compose.services);
const ours = services.filter(([, s]) => s.build !== undefined);
/** The processes that serve HTTP (/readyz): gateways, worker, selectors. */
const switchboard = ours.filter(([, s]) =>
  /^dist\/services\//.test(argv(s.command).find((a) => a.startsWith('dist/')) ?? ''),
);
/** Services whose published ports are the Switchboard APIs (behind the secrets). */
const API_SERVICES = ['gateway-1', 'gateway-2', 'selector-1', 'selector-2'];

describe('docker-compose.yml: secrets', () => {
  it('every secret is required: `${NAME:?message}`, never a default, never a literal', () => {
    const uses = interpolations(text).filter((i) => (SECRETS as readonly string[]).includes(i.name));
    expect(new Set(uses.map((i) => i.name))).toEqual(new Set(SECRETS));
    for (const use of uses) {
      expect(use.operator, `${use.text} must fail when ${use.name} is unset or empty`).toBe(':?');
      expect(use.argument, `${use.text} tells the operator what to do`).toContain(use.name);
    }
    for (const [name, service] of services) {
      const env = service.environment ?? {};
      const entries = Array.isArray(env) ? env.map((l) => l.split(/=(.*)/s, 2)) : Object.entries(env);
      for (const [key, value] of entries) {
        if (!(SECRETS as readonly string[]).includes(key)) continue;
        expect(String(value), `${name}: ${key} comes from the operator`).toMatch(
          new RegExp(`^\\$\\{${key}:\\?[^}]+\\}$`),
        );
      }
    }
  });

  it('interpolation refuses to go on without them, for every service that gets them', () => {
    for (const [name, service] of switchboard)
      for (const secret of SECRETS.filter((s) => s in (service.environment ?? {})))
        expect(
          () => environment(service, { ...TEST_SECRETS, [secret]: '' }),
          `${name} without ${secret}`,
        ).toThrow(secret);
  });

  it('.env is ignored by git and by the image build; deploy/env.example names every secret, with no value', () => {
    const lines = (path: string) =>
      read(path)
        .split('\n')
        .map((l) => l.trim());
    expect(lines('.gitignore')).toContain('.env');
    expect(lines('.dockerignore')).toContain('.env');
    const example = lines('deploy/env.example').filter((l) => l && !l.startsWith('#'));
    const assigned = Object.fromEntries(example.map((l) => l.split(/=(.*)/s, 2) as [string, string]));
    for (const secret of SECRETS) expect(assigned[secret], `deploy/env.example: ${secret}=`).toBe('');
  });
});

describe('docker-compose.yml: ports, images, health', () => {
  const bound = (vars: Record<string, string>) =>
    services.flatMap(([name, s]) => (s.ports ?? []).map((p: Port) => ({ name, ...publishedPort(p, vars) })));

  it('every published port is bound to 127.0.0.1 unless the operator says otherwise', () => {
    expect(bound({}).length).toBeGreaterThan(0);
    for (const port of bound({}))
      expect(
        port.hostIp,
        `${port.name} publishes ${port.published} on ${port.hostIp || 'every interface'}`,
      ).toBe('127.0.0.1');
    expect(compose.services['redis']!.ports ?? [], 'Redis is not published').toEqual([]);
  });

  it('SB_BIND_ADDRESS opens the APIs only; worker metrics, Jaeger, Prometheus and Grafana follow SB_OPS_BIND_ADDRESS', () => {
    const open = bound({ SB_BIND_ADDRESS: '0.0.0.0' });
    expect(new Set(open.filter((p) => p.hostIp === '0.0.0.0').map((p) => p.name))).toEqual(
      new Set(API_SERVICES),
    );
    const ops = bound({ SB_OPS_BIND_ADDRESS: '10.0.0.5' }).filter((p) => p.hostIp === '10.0.0.5');
    expect(new Set(ops.map((p) => p.name))).toEqual(new Set(['worker', 'jaeger', 'prometheus', 'grafana']));
  });

  it('every image is pinned to an exact release (no latest, no floating tag such as redis:8)', () => {
    for (const [name, service] of services) {
      if (service.build !== undefined) {
        expect(service.image, `${name} is built here`).toBe('switchboard:local');
        continue;
      }
      expect(service.image, `${name} image`).toMatch(
        /^[a-z0-9./-]+:v?\d+\.\d+\.\d+(-[a-z0-9.]+)?(@sha256:[0-9a-f]{64})?$/,
      );
    }
  });

  it('Jaeger v2 runs its built-in all-in-one configuration: OTLP 4317/4318, UI 16686, health on 13133', () => {
    const jaeger = compose.services['jaeger']!;
    expect(jaeger.command, 'no --config: the default accepts OTLP with in-memory storage').toBeUndefined();
    expect(Object.keys(environment(jaeger)), 'v1 variables such as COLLECTOR_OTLP_ENABLED').toEqual([]);
    expect(
      bound({})
        .filter((p) => p.name === 'jaeger')
        .map((p) => p.target)
        .sort(),
    ).toEqual(['16686', '4317', '4318']);
    expect(argv(jaeger.healthcheck?.test).join(' ')).toContain('http://127.0.0.1:13133/status');
  });

  it('every service has a health check, and depends_on service_healthy only on services that have one', () => {
    for (const [name, service] of services) {
      const test = argv(service.healthcheck?.test);
      expect(service.healthcheck?.disable, `${name} healthcheck disabled`).not.toBe(true);
      expect(['CMD', 'CMD-SHELL'], `${name} has a health check`).toContain(test[0]);
    }
    for (const [name] of switchboard)
      expect(argv(compose.services[name]!.healthcheck?.test).join(' '), `${name} asks /readyz`).toContain(
        '/readyz',
      );
    for (const [name, service] of services) {
      const deps = Array.isArray(service.depends_on) ? {} : (service.depends_on ?? {});
      for (const [dep, { condition }] of Object.entries(deps)) {
        expect(compose.services[dep], `${name} depends on ${dep}`).toBeDefined();
        if (condition === 'service_healthy')
          expect(compose.services[dep]!.healthcheck, `${name} waits for ${dep} to be healthy`).toBeDefined();
      }
    }
  });

  it('Redis persists: append-only file on a named volume', () => {
    const redis = compose.services['redis']!;
    expect(argv(redis.command).join(' ')).toMatch(/--appendonly yes/);
    const data = (redis.volumes ?? []).map((v) =>
      typeof v === 'string' ? v.split(':') : [v.source, v.target],
    );
    expect(data).toContainEqual(['redis-data', '/data']);
    expect(Object.keys(compose.volumes ?? {})).toContain('redis-data');
  });
});

/**
 * `docker-compose config` (Debian's docker-compose 1.29; `.ci/run` installs it) or, where that is
 * absent, `docker compose config` (the v2 plugin). Neither needs a Docker engine for `config`.
 */
async function composeCommand(): Promise<string[]> {
  for (const candidate of [['docker-compose'], ['docker', 'compose']]) {
    const result = await run(candidate, ['version'], {});
    if (result.code === 0) return candidate;
  }
  throw new Error(
    'No Compose to validate docker-compose.yml with: install docker-compose ' +
      '(Debian/Ubuntu: sudo apt-get install -y docker-compose; .ci/run does it) or the docker compose plugin.',
  );
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string[], args: string[], vars: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      command[0]!,
      [...command.slice(1), ...args],
      // Only PATH and HOME from this environment: no SB_* or COMPOSE_* of the caller's leaks in.
      {
        cwd: fileURLToPath(ROOT),
        env: { PATH: process.env['PATH'] ?? '', HOME: scratch, ...vars },
        timeout: 20_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const scratch = mkdtempSync(join(tmpdir(), 'sb-compose-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** An env file for --env-file, so that a developer's own .env never takes part. */
function envFile(name: string, content: string): string {
  const path = join(scratch, name);
  writeFileSync(path, content);
  return path;
}

describe('docker-compose.yml: Compose accepts it', () => {
  // Looked up by the first test that needs it: each test fails with the same message when absent.
  let compose: Promise<string[]> | undefined;
  const config = async (vars: Record<string, string>, file = envFile('empty.env', ''), quiet = true) =>
    run(
      await (compose ??= composeCommand()),
      ['--env-file', file, '-f', 'docker-compose.yml', 'config', ...(quiet ? ['-q'] : [])],
      vars,
    );

  it('is valid with the secrets set', async () => {
    const result = await config(TEST_SECRETS);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('refuses to go on without each secret, naming it', async () => {
    for (const secret of SECRETS) {
      const result = await config({ ...TEST_SECRETS, [secret]: '' });
      expect(result.code, `without ${secret}`).not.toBe(0);
      const message = interpolations(text).find((i) => i.name === secret)!.argument;
      expect(result.stderr.trim(), `without ${secret}`).toMatch(
        new RegExp(`${secret}[\\s\\S]*${escapeRegExp(message)}$`),
      );
    }
  });

  it('refuses deploy/env.example as it is (the secrets are left for the operator to fill in)', async () => {
    const result = await config({}, envFile('example.env', read('deploy/env.example')));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/SB_JOIN_TOKEN|SB_NODE_TOKEN_SECRET|SB_API_KEY/);
  });

  it('as Compose resolves it, publishes every port on 127.0.0.1 and passes the secrets from the environment', async () => {
    const result = await config(TEST_SECRETS, undefined, false);
    expect(result.code, result.stderr).toBe(0);
    const resolved = parse(result.stdout) as ComposeFile;
    for (const [name, service] of Object.entries(resolved.services)) {
      for (const port of service.ports ?? [])
        expect(publishedPort(port).hostIp, `${name} ${JSON.stringify(port)}`).toBe('127.0.0.1');
      const env = (service.environment ?? {}) as Record<string, string>;
      for (const secret of SECRETS)
        if (secret in env) expect(env[secret], `${name} ${secret}`).toBe(TEST_SECRETS[secret]);
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
