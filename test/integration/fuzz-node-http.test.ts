import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, Redis } from 'ioredis';
import type { NodeFrameType } from '../../shared/protocol/node-messages.ts';
import {
  FRAME_SCHEMAS,
  FUZZ_RUNS,
  GARBAGE_RUNS,
  mutant,
  redisState,
  validFrame,
  verdict,
} from '../support/fuzz-oracle.ts';
import { rawRequest } from '../support/raw-http.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import {
  inspectClient,
  JOIN_TOKEN,
  nodeToken,
  startTestGateway,
  type TestGateway,
} from '../support/service-harness.ts';

/**
 * Issue 11 deliverable 3, node HTTP: every body the gateway takes, mutated one field at a time,
 * and hostile route parameters. Rule: invalid input gets 400 (413 when too large) naming the
 * field and changes nothing in Redis; nothing is ever 5xx.
 */
const ROUTES: { type: NodeFrameType; path: (id: string) => string }[] = [
  { type: 'node_register', path: () => '/v1/nodes/register' },
  { type: 'node_heartbeat', path: (id) => `/v1/nodes/${id}/heartbeat` },
  { type: 'job_ack', path: (id) => `/v1/nodes/${id}/jobs/fuzz-job/ack` },
  { type: 'job_started', path: (id) => `/v1/nodes/${id}/jobs/fuzz-job/started` },
  { type: 'job_result', path: (id) => `/v1/nodes/${id}/jobs/fuzz-job/result` },
];

describe('fuzz: node HTTP bodies and route parameters', () => {
  const prefix = uniquePrefix('fuzz-http');
  const nodeId = 'fuzz-http-node';
  let gw: TestGateway;
  let redis: Redis | Cluster;
  let before: Record<string, string>;

  beforeAll(async () => {
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() });
    redis = inspectClient(gw.config);
    // the join token registers; the node's own token does the rest
    const post = (path: string, body: unknown) =>
      rawRequest(gw.http, 'POST', path, {
        token: path === '/v1/nodes/register' ? JOIN_TOKEN : nodeToken(nodeId),
        body: JSON.stringify(body),
      });
    expect((await post('/v1/nodes/register', validFrame('node_register', nodeId))).status).toBe(201);
    expect((await post(`/v1/nodes/${nodeId}/heartbeat`, validFrame('node_heartbeat', nodeId))).status).toBe(
      200,
    );
    await new Promise((r) => setTimeout(r, 200));
    before = await redisState(redis, prefix);
  });
  afterAll(async () => {
    await gw.close();
    await redis.quit();
  });

  it.each(ROUTES.map((r) => [r.type, r]))(
    '%s: one mutated field → 400 naming it, nothing written',
    async (_name, route) => {
      const base = validFrame(route.type, nodeId);
      await fc.assert(
        fc.asyncProperty(mutant(base), async ({ body }) => {
          const text = JSON.stringify(body);
          // over HTTP a body without node_id takes the URL's
          const expected = verdict(FRAME_SCHEMAS[route.type], text, 'body', (parsed) =>
            route.type !== 'node_register' &&
            typeof parsed === 'object' &&
            parsed !== null &&
            !('node_id' in parsed)
              ? { ...parsed, node_id: nodeId }
              : parsed,
          );
          fc.pre(expected.invalid);
          const res = await rawRequest(gw.http, 'POST', route.path(nodeId), {
            token: route.type === 'node_register' ? JOIN_TOKEN : nodeToken(nodeId),
            body: text,
          });
          const error = res.body['error'] as { code: string; message: string };
          expect([400, 413], JSON.stringify(res.body)).toContain(res.status);
          expect(error.code).not.toBe('INTERNAL');
          expect(
            expected.names.some((name) => error.message.startsWith(name)),
            `${error.message} | ${expected.names.join(' ')}`,
          ).toBe(true);
        }),
        FUZZ_RUNS,
      );
      expect(await redisState(redis, prefix)).toEqual(before);
    },
  );

  it('hostile route parameters and garbage bodies: never 5xx, nothing written', async () => {
    const segment = fc.oneof(
      fc.string({ minLength: 1, maxLength: 30 }).map(encodeURIComponent),
      fc.constantFrom('%', '%zz', '%E0%A4%A', '%C0%80', '%00', '..', '%2F', 'a%', '%%%'),
      fc.stringMatching(/^[A-Za-z0-9%._:-]{1,20}$/),
    );
    const body = fc.oneof(fc.string({ maxLength: 100 }), fc.json({ maxDepth: 3 }), fc.constant(''));
    await fc.assert(
      fc.asyncProperty(
        segment,
        segment,
        fc.constantFrom('heartbeat', 'jobs/j/ack', 'jobs/j/result', 'jobs/j/nope'),
        body,
        async (id, job, tail, text) => {
          const path = `/v1/nodes/${id}/${tail.replace('/j/', `/${job}/`)}`;
          const res = await rawRequest(gw.http, 'POST', path, { token: JOIN_TOKEN, body: text });
          expect(res.status, `${path} ${JSON.stringify(res.body)}`).toBeGreaterThanOrEqual(400);
          expect(res.status, `${path} ${JSON.stringify(res.body)}`).toBeLessThan(500);
        },
      ),
      GARBAGE_RUNS,
    );
    expect(await redisState(redis, prefix)).toEqual(before);
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
  });
});
