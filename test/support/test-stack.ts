import { Redis } from 'ioredis';
import { checkpointEntry } from './fleet.ts';
import { redisUrl, waitFor } from './redis.ts';
import {
  startTestGateway,
  startTestSelector,
  startTestWorker,
  type TestGateway,
  type TestSelector,
  type TestWorker,
} from './service-harness.ts';

export interface StackOptions {
  /** gateway replicas (default 1) */
  gateways?: number;
  /** environment of every service */
  env?: Record<string, string>;
  /** environment of the worker only, on top of `env` */
  workerEnv?: Record<string, string>;
  /** environment of the selector only, on top of `env` */
  selectorEnv?: Record<string, string>;
}

export interface Closable {
  close(): Promise<unknown>;
}

/**
 * A whole Switchboard on the test Redis: `gateways` gateway replicas, a worker and a selector,
 * all real, sharing `prefix`; plus a plain Redis client to look at what they wrote, and the
 * client calls most tests make (POST a job, GET a job).
 */
export class TestStack {
  private readonly closables: Closable[] = [];

  private constructor(
    readonly gateways: TestGateway[],
    readonly worker: TestWorker,
    readonly selector: TestSelector,
    readonly redis: Redis,
  ) {}

  static async start(prefix: string, options: StackOptions = {}): Promise<TestStack> {
    const target = { redisUrl: redisUrl() };
    const env = options.env ?? {};
    const gateways: TestGateway[] = [];
    for (let i = 0; i < (options.gateways ?? 1); i++)
      gateways.push(await startTestGateway(prefix, target, env));
    const worker = await startTestWorker(prefix, target, { ...env, ...options.workerEnv });
    const selector = await startTestSelector(prefix, target, { ...env, ...options.selectorEnv });
    return new TestStack(gateways, worker, selector, new Redis(redisUrl()));
  }

  /** The first gateway replica. */
  get gw(): TestGateway {
    return this.gateways[0]!;
  }

  /** Closed (in reverse order) before the services, e.g. the test's nodes. */
  track<T extends Closable>(closable: T): T {
    this.closables.push(closable);
    return closable;
  }

  /** POST /v1/jobs (zh→en unless the body says otherwise) with the admin key. */
  async submit(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await this.selector.api('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', ...body }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** GET /v1/jobs/:id, waiting up to `waitMs` for a change. */
  async view<T = Record<string, unknown>>(id: unknown, waitMs = 0): Promise<T> {
    const query = waitMs > 0 ? `?wait_ms=${waitMs}` : '';
    return (await (await this.selector.api(`/v1/jobs/${String(id)}${query}`)).json()) as T;
  }

  /** Until each node's published checkpoint entry is `ready` and the selector holds `total` nodes. */
  async waitReady(nodeIds: string[], total = nodeIds.length): Promise<void> {
    for (const id of nodeIds)
      await waitFor(async () => (await checkpointEntry(this.redis, this.gw.keys, id))?.status === 'ready');
    await waitFor(
      async () =>
        ((await (await this.selector.api('/v1/snapshot')).json()) as { nodes: number }).nodes === total,
    );
  }

  async close(): Promise<void> {
    for (const c of this.closables.reverse()) await c.close();
    await this.selector.close();
    await this.worker.close();
    await Promise.all(this.gateways.map((g) => g.close()));
    await this.redis.quit();
  }
}
