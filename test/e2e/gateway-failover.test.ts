import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { FleetSimulator } from '../../agent/fleet-simulator.ts';
import { LANGUAGE_PROFILES } from '../../agent/fleet-profiles.ts';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import {
  API_KEY,
  JOIN_TOKEN,
  NODE_TOKEN_SECRET,
  startTestSelector,
  startTestWorker,
  type TestSelector,
  type TestWorker,
} from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';

describe('a gateway replica killed: its nodes reconnect to the other and no job is lost', () => {
  const prefix = uniquePrefix();
  const keys = new KeyBuilder(prefix, 16);
  const env = { SB_ACK_TIMEOUT_MS: '3000', SB_JOB_TIMEOUT_MS: '10000', SB_REAPER_INTERVAL_MS: '300' };
  const gateways: LaunchedService[] = [];
  let worker: TestWorker;
  let selector: TestSelector;
  let fleet: FleetSimulator;
  let redis: Redis;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      gateways.push(
        await launchService('gateway', 'services/gateway/main.ts', {
          REDIS_URL: redisUrl(),
          SB_PREFIX: prefix,
          PORT: '0',
          SB_JOIN_TOKEN: JOIN_TOKEN,
          SB_NODE_TOKEN_SECRET: NODE_TOKEN_SECRET,
          SB_API_KEY: API_KEY,
          LOG_LEVEL: 'warn',
          ...env,
        }),
      );
    }
    worker = await startTestWorker(prefix, { redisUrl: redisUrl() }, env);
    selector = await startTestSelector(prefix, { redisUrl: redisUrl() }, env);
    redis = new Redis(redisUrl());
    const urls = gateways.map((g) => `ws://127.0.0.1:${g.port}/ws/node`);
    fleet = new FleetSimulator({
      gatewayUrls: urls, // node i starts on gateway i mod 2 and moves to the other when it goes away
      token: JOIN_TOKEN,
      nodes: 10,
      idPrefix: 'gwkill',
      profiles: [{ item: LANGUAGE_PROFILES['zh-en']!, weight: 1 }],
      maxJobs: 4,
      job: { meanMs: 1500, sigma: 0 },
      heartbeatIntervalMs: 500,
      rampUpMs: 100,
      summaryIntervalMs: 0,
      seed: 7,
    });
    await fleet.start();
    await waitFor(
      async () => ((await (await selector.api('/v1/snapshot')).json()) as { nodes: number }).nodes === 10,
      {
        timeoutMs: 15000,
      },
    );
    await waitFor(async () => {
      const b = (await (
        await selector.api('/v1/jobs', {
          method: 'POST',
          body: '{"src_lang":"zh","tgt_lang":"en","dry_run":true}',
        })
      ).json()) as {
        breakdown?: { eligible: number };
      };
      return b.breakdown?.eligible === 10;
    });
  });
  afterAll(async () => {
    await fleet.stop();
    await Promise.all(gateways.map((g) => stopService(g, 0)));
    await selector.close();
    await worker.close();
    await redis.quit();
  });

  it('every job submitted before the kill finishes; slots return to 0', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `gwkill-job-${i}`);
    for (const id of ids) {
      const res = await selector.api('/v1/jobs', {
        method: 'POST',
        body: JSON.stringify({ job_id: id, src_lang: 'zh', tgt_lang: 'en' }),
      });
      expect(res.status).toBe(201);
    }
    gateways[0]!.proc.kill('SIGKILL'); // mid-job: the nodes hold running jobs and unacked assignments
    await gateways[0]!.exited;
    const finished = await Promise.all(
      ids.map(
        async (id) =>
          ((await (await selector.api(`/v1/jobs/${id}?wait_ms=25000`)).json()) as { status: string }).status,
      ),
    );
    expect(finished.every((s) => s === 'finished')).toBe(true);
    await waitFor(async () => {
      const rows = await Promise.all(
        Array.from({ length: 10 }, (_, i) => `gwkill-${String(i).padStart(4, '0')}`).map((n) =>
          redis.hmget(keys.forNode(n).node(n), 'reserved', 'committed'),
        ),
      );
      return rows.flat().every((v) => Number(v) === 0);
    });
  });
});
