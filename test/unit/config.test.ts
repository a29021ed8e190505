import { describe, expect, it } from 'vitest';
import { ConfigError, envSchema, loadConfig, type ServiceName } from '../../shared/config.ts';
import { beforeSubsections, codeSpan, readRepoFile, section, tableRows } from '../support/markdown.ts';

const auth = {
  SB_JOIN_TOKEN: 'join-token-x',
  SB_NODE_TOKEN_SECRET: 'secret-secret-secret',
  SB_API_KEY: 'api-key-x',
};

describe('config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(auth);
    expect(c.redis).toEqual({ url: 'redis://127.0.0.1:6379', clusterNodes: null });
    expect(c.prefix).toBe('sb');
    expect(c.shards).toBe(16);
    expect(c.env).toMatchObject({
      SB_HEARTBEAT_INTERVAL_MS: 15000,
      SB_NODE_TTL_MS: 45000,
      SB_REQUIRE_GPU: true,
      SB_WS_RATE_LIMIT: 50,
      SB_MAX_MESSAGE_BYTES: 262144,
      SB_SELECT_STRATEGY: 'p2c',
    });
  });

  it('lists every bad variable at once', () => {
    let error: unknown;
    try {
      loadConfig({ SB_SHARDS: '0', SB_AUTH: 'maybe', SB_WS_RATE_LIMIT: 'fast', REDIS_CLUSTER_NODES: 'nope' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['SB_SHARDS', 'SB_AUTH', 'SB_WS_RATE_LIMIT', 'REDIS_CLUSTER_NODES'])
      expect(problems).toContain(name);
  });

  it('requires the secrets when auth is on, and not when off', () => {
    expect(() => loadConfig({})).toThrow(/SB_JOIN_TOKEN[\s\S]*SB_NODE_TOKEN_SECRET[\s\S]*SB_API_KEY/);
    expect(loadConfig({ SB_AUTH: 'off' }).auth.enabled).toBe(false);
  });

  it('requires of each service only the secrets it checks, naming each missing variable', () => {
    const problems = (env: NodeJS.ProcessEnv, service?: ServiceName) => {
      try {
        loadConfig(env, service);
        return [];
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems.map((p) => p.split(':', 1)[0]);
      }
    };
    expect(problems({}, 'gateway')).toEqual(['SB_JOIN_TOKEN', 'SB_NODE_TOKEN_SECRET']);
    expect(problems({}, 'selector')).toEqual(['SB_API_KEY']);
    expect(problems({}, 'worker')).toEqual([]);
    expect(problems({})).toEqual(['SB_JOIN_TOKEN', 'SB_NODE_TOKEN_SECRET', 'SB_API_KEY']);
    expect(problems({ SB_JOIN_TOKEN: auth.SB_JOIN_TOKEN }, 'gateway')).toEqual(['SB_NODE_TOKEN_SECRET']);
    expect(problems({ SB_API_KEY: auth.SB_API_KEY }, 'selector')).toEqual([]);
    // the worker starts with Redis alone, auth on
    const worker = loadConfig({ REDIS_URL: 'redis://10.0.0.5:6379' }, 'worker');
    expect(worker.auth.enabled).toBe(true);
    expect(worker.redis.url).toBe('redis://10.0.0.5:6379');
    expect(() => loadConfig({}, 'gateway')).toThrow(
      'SB_JOIN_TOKEN: required by the gateway when SB_AUTH=on (set SB_AUTH=off only for local development)',
    );
  });

  it('rotation lists: the list form satisfies a required secret; single values still work; first signs', () => {
    const c = loadConfig(
      {
        SB_JOIN_TOKENS: 'join-new-0001, join-old-0001',
        SB_NODE_TOKEN_SECRETS: 'node-secret-new-000001,node-secret-old-000001',
        SB_NODE_TOKEN_SECRET: 'node-secret-single-0001',
        SB_API_KEYS: 'acme:acme-key-0001,bare-key-0001',
        SB_ADMIN_API_KEYS: 'admin-key-0001,ops:ops-key-00001',
      },
      'gateway',
    );
    expect(c.auth.joinTokens).toEqual(['join-new-0001', 'join-old-0001']);
    expect(c.auth.nodeTokenSecrets).toEqual([
      'node-secret-new-000001',
      'node-secret-old-000001',
      'node-secret-single-0001',
    ]);
    expect(c.auth.apiKeys[0]).toEqual({ key: 'acme-key-0001', tenant: 'acme' });
    expect(c.auth.apiKeys[1]!.tenant).toMatch(/^key-[0-9a-f]{12}$/);
    expect(c.auth.adminKeys).toEqual([
      { key: 'admin-key-0001', tenant: 'admin' },
      { key: 'ops-key-00001', tenant: 'ops' },
    ]);
    expect(c.auth.joinReregister).toBe('offline');
    expect(loadConfig(auth).auth.apiKeys).toEqual([{ key: 'api-key-x', tenant: 'default' }]);
  });

  it('never echoes a secret in a configuration error', () => {
    let error: unknown;
    try {
      loadConfig({
        ...auth,
        SB_API_KEY: 'short',
        SB_JOIN_TOKENS: 'ok-token-0001,tiny',
        SB_ADMIN_API_KEYS: 'bad label:key-0001',
      });
    } catch (err) {
      error = err;
    }
    const text = (error as ConfigError).problems.join('\n');
    expect(text).toMatch(/SB_API_KEY[\s\S]*SB_JOIN_TOKENS[\s\S]*SB_ADMIN_API_KEYS/);
    for (const secret of ['short', 'tiny', 'ok-token-0001', 'key-0001']) expect(text).not.toContain(secret);
  });

  it('lists a missing secret together with the schema problems', () => {
    expect(() => loadConfig({ SB_SHARDS: 'many' }, 'selector')).toThrow(/SB_SHARDS[\s\S]*SB_API_KEY/);
  });

  it('parses cluster seeds; Cluster mode wins over REDIS_URL', () => {
    const c = loadConfig({ ...auth, REDIS_URL: 'redis://x:1', REDIS_CLUSTER_NODES: '10.0.0.1:7000,h:7001' });
    expect(c.redis.clusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'h', port: 7001 },
    ]);
  });

  // README "Configuration": its first table is the services' variables (the `npm start` table
  // below it is checked against scripts/ in docs.test.ts).
  const readmeRows = () =>
    tableRows(beforeSubsections(section(readRepoFile('README.md'), '## Configuration'))).map(
      ([name, def]) => [codeSpan(name ?? '') ?? name, def ?? ''] as const,
    );
  // every default is a string, a number or a boolean
  const schemaDefaults = envSchema.parse({}) as unknown as Record<
    string,
    string | number | boolean | undefined
  >;

  /** A default cell agrees with the schema: the literal default, or no single literal when there is none. */
  const expectDefault = (where: string, name: string, cell: string) => {
    const value = schemaDefaults[name];
    if (value === undefined) expect(codeSpan(cell), `${where}: ${name} has no default`).toBeNull();
    else expect(codeSpan(cell), `${where}: default of ${name}`).toBe(String(value));
  };

  it('every variable of the schema is in the README configuration table, and vice versa', () => {
    const documented = readmeRows().map(([name]) => name);
    expect(new Set(documented).size, 'a variable listed twice').toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it('the README configuration table gives each default as the schema has it', () => {
    for (const [name, cell] of readmeRows()) expectDefault('README', name!, cell);
  });

  it('the variables PROTOCOL.md promises exist, with the defaults it gives', () => {
    const rows = tableRows(
      section(
        readRepoFile('docs/PROTOCOL.md'),
        '## Running the services (contract for tools that start them)',
      ),
    );
    expect(rows.length).toBeGreaterThan(10);
    for (const [name, , def] of rows) {
      const variable = codeSpan(name ?? '') ?? '';
      expect(Object.keys(envSchema.shape), 'PROTOCOL.md names it').toContain(variable);
      expectDefault('PROTOCOL.md', variable, def ?? '');
    }
  });
});
