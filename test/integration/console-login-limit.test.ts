import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { ADMIN_API_KEY, startTestSelector, type TestSelector } from '../support/service-harness.ts';

/** POST /console/login is rate-limited per client address (SB_CONSOLE_LOGIN_RATE). */
describe('console sign-in rate limit', () => {
  const consoleDir = mkdtempSync(join(tmpdir(), 'sb-console-'));
  let selector: TestSelector;

  beforeAll(async () => {
    writeFileSync(join(consoleDir, 'index.html'), '<!doctype html><title>console</title>');
    selector = await startTestSelector(
      uniquePrefix(),
      { redisUrl: redisUrl() },
      { SB_CONSOLE_DIR: consoleDir, SB_CONSOLE_LOGIN_RATE: '3' },
    );
  });
  afterAll(async () => {
    await selector.close();
    rmSync(consoleDir, { recursive: true, force: true });
  });

  const login = (key: string) =>
    fetch(`${selector.url}/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key }),
    });

  it('answers 429 RATE_LIMITED with Retry-After after the allowed attempts, even for the right key', async () => {
    expect((await login('wrong-key-1')).status).toBe(401);
    expect((await login('wrong-key-2')).status).toBe(401);
    expect((await login(ADMIN_API_KEY)).status).toBe(200);
    const limited = await login(ADMIN_API_KEY);
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20); // one attempt comes back every 60 s / 3
    const body = (await limited.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('RATE_LIMITED');
    expect(body.error.message).toMatch(/SB_CONSOLE_LOGIN_RATE/);
    // the API itself is not limited: a key in the header still works
    expect((await selector.api('/v1/pools')).status).toBe(200);
  });
});
