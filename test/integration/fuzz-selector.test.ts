import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import {
  GARBAGE_RUNS,
  JOB_REQUEST_SCHEMA,
  mutant,
  redisState,
  validJobRequest,
  verdict,
} from '../support/fuzz-oracle.ts';
import { rawRequest } from '../support/raw-http.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import {
  API_KEY,
  inspectClient,
  startTestSelector,
  testConfig,
  type TestSelector,
} from '../support/service-harness.ts';

/**
 * Issue 11 deliverable 3, client HTTP (selector): POST /v1/jobs bodies mutated one field at a
 * time, and hostile ids in every route with a parameter. Rule: invalid input gets 400 naming
 * the field and changes nothing in Redis; nothing is ever 5xx.
 */
describe('fuzz: selector HTTP', () => {
  const prefix = uniquePrefix('fuzz-sel');
  let selector: TestSelector;
  let redis: Redis | Cluster;
  let before: Record<string, string>;

  beforeAll(async () => {
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() });
    redis = inspectClient(testConfig(prefix, { redisUrl: redisUrl() }));
    before = await redisState(redis, prefix);
  });
  afterAll(async () => {
    await selector.close();
    await redis.quit();
  });

  it('POST /v1/jobs: one mutated field → 400 naming it, nothing written', async () => {
    await fc.assert(
      fc.asyncProperty(mutant(validJobRequest()), async ({ body }) => {
        const text = JSON.stringify(body);
        const expected = verdict(JOB_REQUEST_SCHEMA, text, 'body');
        fc.pre(expected.invalid);
        const res = await rawRequest(selector.url, 'POST', '/v1/jobs', { token: API_KEY, body: text });
        const error = res.body['error'] as { code: string; message: string };
        expect([400, 413], JSON.stringify(res.body)).toContain(res.status);
        expect(error.code).toBe('INVALID_MESSAGE');
        expect(
          expected.names.some((name) => error.message.startsWith(name)),
          `${error.message} | ${expected.names.join(' ')}`,
        ).toBe(true);
      }),
      GARBAGE_RUNS,
    );
    expect(await redisState(redis, prefix)).toEqual(before);
  });

  it('hostile ids and garbage bodies in every route: never 5xx, nothing written', async () => {
    const id = fc.oneof(
      fc.string({ minLength: 1, maxLength: 30 }).map(encodeURIComponent),
      fc.constantFrom('%', '%zz', '%E0%A4%A', '%C0%80', '%00', '..', '%2F', 'a%', 'x'.repeat(300)),
    );
    const route = fc.constantFrom(
      ['GET', '/v1/jobs/ID'],
      ['GET', '/v1/nodes/ID'],
      ['POST', '/v1/nodes/ID/drain'],
      ['DELETE', '/v1/nodes/ID/drain'],
      ['POST', '/v1/jobs'],
    );
    const body = fc.oneof(fc.string({ maxLength: 100 }), fc.json({ maxDepth: 3 }));
    await fc.assert(
      fc.asyncProperty(route, id, body, async ([method, template], value, text) => {
        const path = template.replace('ID', value);
        const res = await rawRequest(selector.url, method, path, {
          token: API_KEY,
          ...(method === 'POST' ? { body: text } : {}),
        });
        expect(res.status, `${method} ${path} ${JSON.stringify(res.body)}`).toBeLessThan(500);
      }),
      GARBAGE_RUNS,
    );
    expect(await redisState(redis, prefix)).toEqual(before);
    expect((await fetch(`${selector.url}/healthz`)).status).toBe(200);
  });
});
