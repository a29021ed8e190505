/**
 * The fault suite's rig (test/faults): real service processes (as `npm run start:*`) on a
 * Redis of their own, a fleet of real node agents, and clients submitting jobs — then the
 * invariants checked after each fault (README "Faults and what Redis must guarantee"):
 *  1. every accepted job reaches `finished`, or `failed` with a reason (a client resubmits a job
 *     the scheduler lost, with the same job_id, as clients do);
 *  2. once idle, no slot or counter is leaked (reservations, running jobs, node counters);
 *  3. never over capacity (sampled in Redis all along, and counted on the nodes);
 *  4. no manual restart: every service still runs and answers /readyz 200.
 */
import { Cluster, Redis } from 'ioredis';
import type { JobStats } from '../../agent/job-runner.ts';
import { LinguaNodeAgent } from '../../agent/lingua-agent.ts';
import { NodeAgent } from '../../agent/node-agent.ts';
import type { JobHandler } from '../../agent/job-runner.ts';
import type { RegistrationBody } from '../../agent/protocol.ts';
import { simulatedHandler } from '../../agent/simulated-job.ts';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { FaultReport } from './fault-report.ts';
import { registerBody } from './node-fixtures.ts';
import { uniquePrefix, waitFor } from './redis.ts';
import { API_KEY, JOIN_TOKEN, NODE_TOKEN_SECRET } from './service-harness.ts';

export type ServiceKind = 'gateway' | 'worker' | 'selector';
export const MAX_JOBS = 3;

/** Short timeouts, so that a fault is over (and checked) within seconds. */
const FAST_ENV = {
  SB_HEARTBEAT_INTERVAL_MS: '500',
  SB_NODE_TTL_MS: '2000',
  SB_ACK_TIMEOUT_MS: '1500',
  SB_JOB_TIMEOUT_MS: '4000',
  SB_MAX_ATTEMPTS: '3',
  SB_REAPER_INTERVAL_MS: '250',
  SB_REDIS_COMMAND_TIMEOUT_MS: '500',
  SB_SHUTDOWN_TIMEOUT_MS: '3000',
  SB_FLUSH_DELAY_MS: '0',
  SB_SHARDS: '4',
};

export interface RigOptions {
  redis: { url: string } | { clusterNodes: string };
  services: Record<ServiceKind, number>;
  nodes: number;
  /**
   * Nodes speaking the lingua client's dialect besides (agent/lingua-agent.ts): they ignore
   * `error` frames and never ack; a close makes them reconnect and register. Default 0.
   */
  linguaNodes?: number;
}

/** What the rig needs of a node agent, ours or the lingua one. */
interface Agent {
  readonly nodeId: string | null;
  readonly registered: boolean;
  readonly stats: { jobs: JobStats };
  stop(graceMs?: number): Promise<void>;
}

export class FaultRig {
  readonly services: Record<ServiceKind, LaunchedService[]> = { gateway: [], worker: [], selector: [] };
  readonly agents: Agent[] = [];
  readonly keys: KeyBuilder;
  readonly inspect: Redis | Cluster;
  /** Jobs a selector accepted (201/200 with the job_id). */
  readonly accepted = new Set<string>();
  /** Jobs found gone (404) after acceptance and submitted again. */
  readonly resubmitted = new Set<string>();
  /** Capacity violations seen: in Redis (sampled) and on the nodes (concurrent jobs). */
  readonly overCapacity: string[] = [];
  /**
   * Jobs no selector accepted before the client gave up, with the last answer. A placement cut
   * short (a Redis error, a selector killed) answers "still being placed" until placing recovery
   * settles it (shared/store/placing-recovery.ts): placed, or dropped and retryable.
   */
  readonly unplaced = new Map<string, string>();
  /** 503 answers to job submissions (Redis down or stalled, no node free). */
  unavailable = 0;
  /** Cluster slots (first, last) of a master the test killed: explain() marks keys it served. */
  lostSlots: [number, number] | null = null;
  readonly report = new FaultReport(this);
  private readonly env: Record<string, string>;
  private readonly running = new Map<string, number>();
  private sampler: NodeJS.Timeout | undefined;
  private submitting = false;
  private submitters: Promise<void>[] = [];
  private seq = 0;
  private readonly prefix = uniquePrefix('faults');

  constructor(private readonly options: RigOptions) {
    this.keys = new KeyBuilder(this.prefix, Number(FAST_ENV.SB_SHARDS));
    const target = options.redis;
    this.env = {
      ...FAST_ENV,
      ...('url' in target
        ? { REDIS_URL: target.url, REDIS_CLUSTER_NODES: '' }
        : { REDIS_CLUSTER_NODES: target.clusterNodes }),
      SB_PREFIX: this.prefix,
      SB_AUTH: 'on',
      SB_JOIN_TOKEN: JOIN_TOKEN,
      SB_NODE_TOKEN_SECRET: NODE_TOKEN_SECRET,
      SB_API_KEY: API_KEY,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    };
    this.inspect =
      'url' in target
        ? new Redis(target.url, { maxRetriesPerRequest: null })
        : new Cluster(
            target.clusterNodes.split(',').map((s) => {
              const i = s.lastIndexOf(':');
              return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
            }),
          );
    this.inspect.on('error', () => undefined);
  }

  /** Starts the services, then the nodes; resolves once every node is registered. */
  async start(): Promise<void> {
    for (const kind of ['worker', 'gateway', 'selector'] as const)
      for (let i = 0; i < this.options.services[kind]; i++) await this.launch(kind);
    const urls = this.services.gateway.map((g) => `ws://127.0.0.1:${g.port}/ws/node`);
    for (let i = 0; i < this.options.nodes; i++) {
      const id = `fault-node-${i}`;
      const agent = new NodeAgent({
        gatewayUrls: [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)],
        token: JOIN_TOKEN,
        registration: registerBody({ node_id: id, max_concurrent_jobs: MAX_JOBS }) as RegistrationBody,
        heartbeat: () => ({
          resource_usage: { cpu_percent: 10, gpu_percent: 10, gpu_mem_percent: 10, mem_percent: 10 },
        }),
        handler: this.counted(id, simulatedHandler({ meanMs: 250, sigma: 0.3 })),
        backoff: { baseMs: 50, maxMs: 500 },
        connectTimeoutMs: 2000,
        registerTimeoutMs: 2000,
        shutdownGraceMs: 0,
      });
      agent.start();
      this.agents.push(agent);
    }
    for (let i = 0; i < (this.options.linguaNodes ?? 0); i++) {
      const agent = new LinguaNodeAgent({
        gatewayUrls: [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)],
        token: JOIN_TOKEN,
        shape: {
          bundle: 'core',
          languages: ['zh', 'en'],
          tts: ['zh', 'en'],
          gpu: { name: 'L4', memory_gb: 24 },
          cpuCores: 8,
          memoryGb: 32,
        },
        heartbeatIntervalMs: 500,
        reconnectMs: 200,
        job: { meanMs: 250, sigma: 0.3 },
      });
      agent.start();
      this.agents.push(agent);
    }
    await waitFor(() => this.agents.every((a) => a.registered), { timeoutMs: 20_000, message: 'nodes up' });
    this.sampler = setInterval(() => void this.sampleCapacity(), 100);
  }

  /** `extraEnv`: settings of this process only (e.g. a fault pause). */
  async launch(kind: ServiceKind, extraEnv: Record<string, string> = {}): Promise<LaunchedService> {
    const service = await launchService(
      kind,
      `services/${kind}/main.ts`,
      { ...this.env, ...extraEnv },
      {
        timeoutMs: 60_000,
      },
    );
    this.services[kind].push(service);
    return service;
  }

  /** SIGKILL one service of a kind (the first); resolves once it is gone. */
  async kill(kind: ServiceKind): Promise<LaunchedService> {
    const victim = this.services[kind].shift()!;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    return victim;
  }

  /** Clients submitting `perSecond` jobs/s to the selectors in turn, retrying with the same job_id. */
  startJobs(perSecond: number): void {
    this.submitting = true;
    const every = 1000 / perSecond;
    const loop = async () => {
      while (this.submitting) {
        const id = `fj-${++this.seq}`;
        this.submitters.push(this.submit(id, Date.now() + 15_000));
        await new Promise((r) => setTimeout(r, every));
      }
    };
    this.submitters.push(loop());
  }

  async stopJobs(): Promise<void> {
    this.submitting = false;
    await Promise.all(this.submitters);
  }

  /** POSTs until a selector accepts (or answers for good); 503 and connection errors are retried. */
  private async submit(jobId: string, deadline: number): Promise<void> {
    let last = '';
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const selectors = this.services.selector;
      const selector = selectors[(this.seq + attempt) % Math.max(selectors.length, 1)];
      try {
        if (!selector) throw new Error('no selector');
        const res = await this.api(selector, '/v1/jobs', {
          method: 'POST',
          body: JSON.stringify({ job_id: jobId, src_lang: 'zh', tgt_lang: 'en' }),
        });
        if (res.status === 201 || res.status === 200) {
          this.accepted.add(jobId);
          return;
        }
        if (res.status !== 503) throw new Error(`job ${jobId}: ${res.status} ${await res.text()}`);
        this.unavailable++;
        last = await res.text();
      } catch (err) {
        if (err instanceof Error && err.message.startsWith(`job ${jobId}`)) throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.unplaced.set(jobId, last);
  }

  /**
   * Invariant 1: every accepted job ends finished, or failed with a reason; one the scheduler
   * lost (404) is submitted again with its job_id. Returns the jobs per final status.
   */
  async settleJobs(timeoutMs = 30_000): Promise<Record<string, number>> {
    const statuses: Record<string, number> = {};
    const deadline = Date.now() + timeoutMs;
    const unsettled: string[] = [];
    await Promise.all(
      [...this.accepted].map(async (jobId) => {
        for (;;) {
          if (Date.now() > deadline) {
            unsettled.push(jobId);
            return;
          }
          const view = await this.job(jobId).catch(() => null);
          if (view === 'gone') {
            this.resubmitted.add(jobId);
            await this.submit(jobId, deadline);
            continue;
          }
          if (view && (view.status === 'finished' || view.status === 'failed')) {
            if (view.status === 'failed' && !view.error?.code)
              throw new Error(`job ${jobId} failed without a reason`);
            const key = view.status === 'failed' ? `failed:${view.error!.code}` : 'finished';
            statuses[key] = (statuses[key] ?? 0) + 1;
            return;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      }),
    );
    if (unsettled.length) {
      const explained = await Promise.all(
        unsettled
          .slice(0, 5)
          .map(async (id) => `${id}:\n${await this.report.explain(id).catch((e) => String(e))}`),
      );
      const worker = this.services.worker.flatMap((w) => w.lastLines().slice(-20));
      throw new Error(
        `job ${unsettled[0]} did not settle (${unsettled.length} of ${this.accepted.size}: ${unsettled.join(', ')})\n${explained.join('\n')}\n${await this.report.failoverQueue(unsettled)}\n${await this.report.liveness()}\nworker log tail:\n${worker.join('\n')}`,
      );
    }
    return statuses;
  }

  private async job(jobId: string): Promise<'gone' | { status: string; error?: { code?: string } } | null> {
    const selector = this.services.selector[0];
    if (!selector) return null;
    const res = await this.api(selector, `/v1/jobs/${jobId}?wait_ms=2000`);
    if (res.status === 404) return 'gone';
    if (res.status !== 200) return null;
    return (await res.json()) as { status: string; error?: { code?: string } };
  }

  /** Invariant 2: once idle, nothing is held — no reservation, no running job, no counter. */
  async assertIdle(timeoutMs = 15_000): Promise<void> {
    let held: string[] = [];
    const idle = async () => {
      held = [];
      for (let s = 0; s < this.keys.shards; s++) {
        const k = this.keys.shard(s);
        const [resv, run] = await Promise.all([
          this.inspect.zcard(k.reservations),
          this.inspect.zcard(k.running),
        ]);
        if (resv || run) held.push(`shard ${s}: ${resv} reservations, ${run} running`);
      }
      for (const agent of this.agents) {
        const id = agent.nodeId!;
        const [reserved, committed] = await this.inspect.hmget(
          this.keys.forNode(id).node(id),
          'reserved',
          'committed',
        );
        if (Number(reserved ?? 0) || Number(committed ?? 0))
          held.push(`${id}: reserved ${reserved}, committed ${committed}`);
      }
      return held.length === 0;
    };
    await waitFor(idle, { timeoutMs, intervalMs: 200 }).catch(async () => {
      throw new Error(`leaked once idle: ${held.join('; ')}\n${await this.report.explainHeld()}`);
    });
  }

  /** Invariant 4: every service still runs and is ready (none was restarted by hand). */
  async assertServing(timeoutMs = 15_000): Promise<void> {
    for (const service of Object.values(this.services).flat()) {
      expectRunning(service);
      await waitFor(async () => (await fetch(`http://127.0.0.1:${service.port}/readyz`)).status === 200, {
        timeoutMs,
        message: `${service.name} ready again`,
      });
    }
  }

  api(service: LaunchedService, path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`http://127.0.0.1:${service.port}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      signal: AbortSignal.timeout(5000),
    });
  }

  /** The node side of invariant 3: never more jobs at once than max_concurrent_jobs. */
  private counted(id: string, handler: JobHandler): JobHandler {
    return async (job, ctx) => {
      const now = (this.running.get(id) ?? 0) + 1;
      this.running.set(id, now);
      if (now > MAX_JOBS) this.overCapacity.push(`${id} ran ${now} jobs at once`);
      try {
        return await handler(job, ctx);
      } finally {
        this.running.set(id, (this.running.get(id) ?? 1) - 1);
      }
    };
  }

  /**
   * The Redis side of invariant 3: the slots the scripts hand out, committed + reserved, never
   * above max_jobs. (reserveSlot admits only while max(running, committed) + reserved < max, so
   * the node's reported `running` makes it stricter; but `running` can count a job whose ack is
   * not applied yet — heartbeats and acks travel on different Redis connections, and after a
   * Redis restart they reconnect at different times — so running + reserved may briefly count
   * one job twice. What the node really runs at once is the node side, `counted`.)
   */
  private async sampleCapacity(): Promise<void> {
    try {
      const pipeline = this.inspect.pipeline();
      for (const agent of this.agents) {
        const id = agent.nodeId;
        if (id)
          pipeline.hmget(this.keys.forNode(id).node(id), 'running', 'committed', 'reserved', 'max_jobs');
      }
      for (const [err, row] of (await pipeline.exec()) ?? []) {
        if (err) continue;
        const [running = 0, committed = 0, reserved = 0, max = 0] = (row as (string | null)[]).map((v) =>
          Number(v ?? 0),
        );
        if (max > 0 && committed + reserved > max)
          this.overCapacity.push(
            `redis: ${running} running/${committed} committed + ${reserved} reserved > ${max}`,
          );
      }
    } catch {
      // Redis down or stalled right now: nothing to sample
    }
  }

  /** What happened, for the test's report: jobs accepted, resubmitted, declined by nodes. */
  summary(statuses: Record<string, number>): string {
    const declined = this.agents.reduce((n, a) => n + a.stats.jobs.declined, 0);
    const received = this.agents.reduce((n, a) => n + a.stats.jobs.received, 0);
    return `${this.accepted.size} accepted, ${this.unplaced.size} never accepted, ${this.resubmitted.size} lost and resubmitted, ${JSON.stringify(statuses)}, ${received} assignments (${declined} declined: node at max_concurrent_jobs)${[...this.unplaced].map(([id, last]) => `\n  never accepted ${id}: ${last}`).join('')}`;
  }

  /** Assignments nodes declined (not acked) because they were at max_concurrent_jobs. */
  get declined(): number {
    return this.agents.reduce((n, a) => n + a.stats.jobs.declined, 0);
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    this.submitting = false;
    await Promise.all(this.agents.map((a) => a.stop(0)));
    await Promise.all(
      Object.values(this.services)
        .flat()
        .map((s) => stopService(s, 3000)),
    );
    this.inspect.disconnect();
  }
}

function expectRunning(service: LaunchedService): void {
  if (service.proc.exitCode !== null || service.proc.signalCode !== null)
    throw new Error(
      `${service.name} exited (${service.proc.exitCode ?? service.proc.signalCode}):\n${service.lastLines().join('\n')}`,
    );
}
