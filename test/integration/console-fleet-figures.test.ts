import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { startTestSelector, type TestSelector } from '../support/service-harness.ts';

interface Figures {
  id: string;
  at: number;
  jobs: Record<string, number>;
}

/**
 * Fleet-wide figures for the console: each selector publishes its own cumulative figures into
 * Redis every 2 s (shared/store/selector-figures.ts); any selector's GET /v1/console/fleet lists
 * every live one, itself first.
 */
describe('console fleet figures across selectors', () => {
  const prefix = uniquePrefix();
  let a: TestSelector;
  let b: TestSelector;

  beforeAll(async () => {
    a = await startTestSelector(prefix, { redisUrl: redisUrl() });
    b = await startTestSelector(prefix, { redisUrl: redisUrl() });
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  const selectors = async (s: TestSelector) =>
    ((await (await s.api('/v1/console/fleet')).json()) as { selectors: Figures[] }).selectors;

  it("a job request answered by one selector shows in the other's console", async () => {
    const res = await b.api('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en' }),
    });
    expect(res.status).toBe(503); // no nodes: counted as no_node
    const [bSelf] = await selectors(b);
    expect(bSelf!.jobs['no_node']).toBe(1);
    const seen = await waitFor(
      async () => {
        const list = await selectors(a);
        const other = list.find((f) => f.id === bSelf!.id);
        return list.length === 2 && other?.jobs['no_node'] === 1 ? list : false;
      },
      { timeoutMs: 10_000 },
    );
    expect(seen[0]!.id).not.toBe(bSelf!.id); // the answering selector first
    expect(seen[0]!.jobs['no_node'] ?? 0).toBe(0);
    expect(Date.now() - seen[1]!.at).toBeLessThan(10_000);
  });
});
