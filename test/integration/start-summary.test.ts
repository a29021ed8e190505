import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReadyFleet } from '../../scripts/lib/fleet-readiness.ts';
import { startLiveSummary } from '../../scripts/lib/live-summary.ts';
import { TestFleet } from '../support/fleet.ts';
import {
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';

/**
 * `npm start`'s live summary and its wait for the fleet (scripts/lib/), against real services:
 * the job trickle waits until every selector sees the fleet ready; a stopped summary prints
 * nothing more, even from a scrape that was in flight.
 */
describe('npm start: live summary and fleet readiness', () => {
  const prefix = uniquePrefix();
  let gw: TestGateway;
  let worker: TestWorker;
  let selectors: TestSelector[];
  let fleet: TestFleet | undefined;
  const targets = () => ({
    gateways: [gw.http],
    selectors: selectors.map((s) => s.url),
    worker: worker.metrics.replace(/\/metrics$/, ''),
  });

  beforeAll(async () => {
    gw = await startTestGateway(prefix, { redisUrl: redisUrl() });
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() });
    selectors = [
      await startTestSelector(prefix, { redisUrl: redisUrl() }),
      await startTestSelector(prefix, { redisUrl: redisUrl() }),
    ];
  });
  afterAll(async () => {
    await fleet?.close();
    for (const s of selectors) await s.close();
    await worker.close();
    await gw.close();
  });

  it('waits until every selector sees the expected ready nodes; gives up at its deadline', async () => {
    const none = await waitForReadyFleet(
      selectors.map((s) => s.url),
      2,
      { timeoutMs: 300, pollMs: 50 },
    );
    expect(none).toEqual({ ready: 0, expected: 2, timedOut: true });

    const waiting = waitForReadyFleet(
      selectors.map((s) => s.url),
      2,
      { timeoutMs: 20_000, pollMs: 50 },
    );
    fleet = await TestFleet.connect(gw.ws, ['sum-1', 'sum-2']);
    fleet.heartbeat(0, 1);
    fleet.heartbeat(1, 1);
    expect(await waiting).toEqual({ ready: 2, expected: 2, timedOut: false });

    const cancelled = await waitForReadyFleet(
      selectors.map((s) => s.url),
      3,
      { timeoutMs: 20_000, pollMs: 50, cancelled: () => true },
    );
    expect(cancelled).toEqual({ ready: 2, expected: 3, timedOut: true });
  });

  it('prints the fleet from the selectors and windowed figures once it has two scrapes', async () => {
    const blocks: string[] = [];
    const summary = startLiveSummary(
      { ...targets(), note: () => 'jobs: a note' },
      { intervalMs: 100, windowMs: 1000 },
      (b) => blocks.push(b),
    );
    try {
      fleet!.heartbeat(0, 2);
      await waitFor(() => blocks.some((b) => /over the last \d+ s/.test(b)), { timeoutMs: 10_000 });
      await waitFor(() => /heartbeats\/s +\d/.test(blocks.at(-1)!), { timeoutMs: 10_000 });
    } finally {
      summary.stop();
    }
    expect(blocks[0]).toContain('figures from the second scrape on');
    const last = blocks.at(-1)!;
    expect(last).toMatch(/^nodes ready +2 \/ 2 /m);
    expect(last).toMatch(/^jobs: a note$/m);
  });

  it('stop() is final: a scrape in flight when it is called prints nothing', async () => {
    const blocks: string[] = [];
    const summary = startLiveSummary(targets(), { intervalMs: 50, windowMs: 1000 }, (b) => blocks.push(b));
    summary.stop(); // the first scrape has started (it runs at once) and not answered yet
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(blocks).toEqual([]);
  });
});
