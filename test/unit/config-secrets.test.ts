import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config.ts';

/** Issue 11 defect 9: configuration errors echoed secrets (`SB_API_KEY: Too small … (got "ak-…")`). */
function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration errors never show a secret', () => {
  it('names the variable and the length of a bad secret, never its value', () => {
    const found = problems({
      SB_API_KEY: 'ak-1234',
      SB_JOIN_TOKEN: 'jt-12',
      SB_NODE_TOKEN_SECRET: 'short-secret',
    });
    expect(found.find((p) => p.startsWith('SB_API_KEY:'))).toMatch(/\(got 7 characters, not shown\)$/);
    expect(found.find((p) => p.startsWith('SB_JOIN_TOKEN:'))).toMatch(/\(got 5 characters, not shown\)$/);
    expect(found.find((p) => p.startsWith('SB_NODE_TOKEN_SECRET:'))).toMatch(/not shown/);
    const text = found.join('\n');
    for (const secret of ['ak-1234', 'jt-12', 'short-secret']) expect(text).not.toContain(secret);
  });

  it('masks the password of a bad REDIS_URL; other values are shown', () => {
    const text = problems({ REDIS_URL: 'redis://:hunter2@', SB_SHARDS: 'many', SB_AUTH: 'off' }).join('\n');
    expect(text).toMatch(/^REDIS_URL: /m);
    expect(text).not.toContain('hunter2');
    expect(text).toContain('SB_SHARDS');
    expect(text).toContain('"many"');
  });
});
