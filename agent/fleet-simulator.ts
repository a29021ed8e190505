import type { ServiceType } from '../shared/protocol/node-messages.ts';
import { silentLog, type AgentLog } from './agent-log.ts';
import {
  DEFAULT_PROFILE_MIX,
  LANGUAGE_PROFILES,
  simulatedRegistration,
  type LanguageProfile,
  type NodeShape,
} from './fleet-profiles.ts';
import { LinguaNodeAgent } from './lingua-agent.ts';
import { NodeAgent } from './node-agent.ts';
import type { HeartbeatParts } from './protocol.ts';
import { normal, seededRandom, weightedPick } from './random.ts';
import { simulatedHandler } from './simulated-job.ts';
import { TimerQueue, type TimerHandle } from './timers.ts';

export interface FleetOptions {
  gatewayUrls: string[];
  token?: string;
  /** Default 200. */
  nodes?: number;
  /** Node ids are `<prefix>-0000`, `<prefix>-0001`, … (default `sim`). */
  idPrefix?: string;
  /** Language profiles with weights (default: DEFAULT_PROFILE_MIX). */
  profiles?: { item: LanguageProfile; weight: number }[];
  /** Service types every node runs (default asr, nmt, tts). */
  services?: ServiceType[];
  /** Nodes have a GPU (default true; the gateway requires one unless SB_REQUIRE_GPU=false). */
  gpu?: boolean;
  /** max_concurrent_jobs of each node (default 4). */
  maxJobs?: number;
  /** Simulated job durations: lognormal around `meanMs` (default 2000) with shape `sigma` (0.5). */
  job?: { meanMs?: number; sigma?: number; failureRate?: number };
  /** Overrides the gateway's heartbeat interval. */
  heartbeatIntervalMs?: number;
  /** Nodes connect spread over this long (default 10 ms per node). */
  rampUpMs?: number;
  /** Ornstein–Uhlenbeck load walk: step noise, percentage points (default 3). */
  loadVolatility?: number;
  /** Same seed, same fleet (profiles, hardware, load walk, job durations). Default: random. */
  seed?: number;
  /** One summary line this often (0 = never; default 5000). */
  summaryIntervalMs?: number;
  print?: (line: string) => void;
  /** Per-node logs get `{ nodeId }` via `child` when the logger has it. */
  log?: AgentLog & { child?: (bindings: object) => AgentLog };
  /** stop(): how long to let running jobs finish (default 5000). */
  shutdownGraceMs?: number;
  /**
   * Share of the nodes, 0..1 (default 0), that speak the lingua client's dialect
   * (lingua-agent.ts: no acks, node_id from the gateway, the fleet's service bundles) instead of
   * Switchboard's; spread evenly over the node indexes.
   */
  linguaShare?: number;
}

export interface FleetSummary {
  elapsedS: number;
  nodes: number;
  registered: number;
  /** Started, not registered right now (connecting, registering, backing off). */
  unregistered: number;
  heartbeats: number;
  /** Heartbeats per second since the previous summary. */
  heartbeatRate: number;
  registrations: number;
  disconnects: number;
  jobs: {
    running: number;
    received: number;
    succeeded: number;
    failed: number;
    cancelled: number;
    declined: number;
  };
  errors: Record<string, number>;
}

const GPUS = [
  { name: 'RTX 4090', memory_gb: 24 },
  { name: 'L4', memory_gb: 24 },
  { name: 'A10', memory_gb: 24 },
  { name: 'A100', memory_gb: 80 },
];

interface Load {
  cpu: number;
  gpu: number;
  gpuMem: number;
  mem: number;
  /** Idle levels of this node (heterogeneity). */
  base: { cpu: number; gpu: number; gpuMem: number; mem: number };
}

/**
 * N simulated nodes in one process, each a real `NodeAgent` with its own socket. All of them
 * share ONE TimerQueue (one armed Node timer for every heartbeat, backoff and simulated job);
 * they connect spread over the ramp-up and draw their first interval after each ack from the
 * whole interval, so heartbeats arrive evenly rather than in bursts.
 */
export class FleetSimulator {
  /** The nodes speaking Switchboard's dialect. */
  readonly agents: NodeAgent[] = [];
  /** The nodes speaking the lingua client's (`linguaShare`). */
  readonly linguaNodes: LinguaNodeAgent[] = [];
  /** What each node is (same index as `agents`). */
  readonly shapes: NodeShape[] = [];
  readonly timers = new TimerQueue();
  private readonly random: () => number;
  private readonly print: (line: string) => void;
  private readonly startTimers: TimerHandle[] = [];
  private summaryTimer: TimerHandle | null = null;
  private startedAt = 0;
  private lastSummary = { at: 0, heartbeats: 0 };
  private stopping: Promise<void> | null = null;

  constructor(private readonly opts: FleetOptions) {
    this.random = seededRandom(opts.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.print = opts.print ?? ((line) => console.log(line));
    const n = opts.nodes ?? 200;
    const mix =
      opts.profiles ??
      Object.entries(DEFAULT_PROFILE_MIX).map(([name, weight]) => ({
        item: LANGUAGE_PROFILES[name]!,
        weight,
      }));
    const share = Math.min(1, Math.max(0, opts.linguaShare ?? 0));
    for (let i = 0; i < n; i++) {
      if (Math.floor((i + 1) * share) > Math.floor(i * share))
        this.linguaNodes.push(this.createLingua(i, mix));
      else this.agents.push(this.createAgent(i, mix));
    }
  }

  /** Every node, both dialects. */
  get nodes(): (NodeAgent | LinguaNodeAgent)[] {
    return [...this.agents, ...this.linguaNodes];
  }

  /** Starts the nodes, spread over the ramp-up; resolves once the last one has been started. */
  async start(): Promise<void> {
    this.startedAt = performance.now();
    this.lastSummary = { at: this.startedAt, heartbeats: 0 };
    const all = this.nodes;
    const n = all.length;
    const ramp = this.opts.rampUpMs ?? n * 10;
    const interval = this.opts.summaryIntervalMs ?? 5000;
    if (interval > 0) this.scheduleSummary(interval);
    await Promise.all(
      all.map(
        (agent, i) =>
          new Promise<void>((resolve) => {
            this.startTimers.push(
              this.timers.after(n > 1 ? (ramp * i) / (n - 1) : 0, () => {
                if (!this.stopping) agent.start();
                resolve();
              }),
            );
          }),
      ),
    );
  }

  /** Registered nodes right now. */
  get registered(): number {
    return this.nodes.filter((a) => a.registered).length;
  }

  /** Stops every node (jobs get `shutdownGraceMs` to finish), then the timers. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.summaryTimer?.cancel();
      for (const t of this.startTimers) t.cancel();
      await Promise.all(this.nodes.map((a) => a.stop(this.opts.shutdownGraceMs ?? 5000)));
      this.timers.close();
    })();
    return this.stopping;
  }

  summary(): FleetSummary {
    const now = performance.now();
    const s: FleetSummary = {
      elapsedS: Math.round((now - this.startedAt) / 100) / 10,
      nodes: this.agents.length + this.linguaNodes.length,
      registered: 0,
      unregistered: 0,
      heartbeats: 0,
      heartbeatRate: 0,
      registrations: 0,
      disconnects: 0,
      jobs: { running: 0, received: 0, succeeded: 0, failed: 0, cancelled: 0, declined: 0 },
      errors: {},
    };
    for (const a of this.nodes) {
      if (a.registered) s.registered++;
      else if (a.lifecycle === 'running') s.unregistered++;
      const st = a.stats;
      s.heartbeats += st.heartbeats;
      s.registrations += st.registrations;
      s.disconnects += st.disconnects;
      s.jobs.running += a.runningJobs;
      s.jobs.received += st.jobs.received;
      s.jobs.succeeded += st.jobs.succeeded;
      s.jobs.failed += st.jobs.failed;
      s.jobs.cancelled += st.jobs.cancelled;
      s.jobs.declined += st.jobs.declined;
      for (const [code, count] of Object.entries(st.errors)) s.errors[code] = (s.errors[code] ?? 0) + count;
    }
    const dt = (now - this.lastSummary.at) / 1000;
    s.heartbeatRate = dt > 0 ? Math.round(((s.heartbeats - this.lastSummary.heartbeats) / dt) * 10) / 10 : 0;
    this.lastSummary = { at: now, heartbeats: s.heartbeats };
    return s;
  }

  static format(s: FleetSummary): string {
    const errors = Object.entries(s.errors)
      .map(([code, n]) => `${code}=${n}`)
      .join(' ');
    const j = s.jobs;
    return (
      `[fleet ${s.elapsedS.toFixed(1)}s] nodes ${s.registered}/${s.nodes} registered` +
      (s.unregistered ? ` (${s.unregistered} connecting)` : '') +
      ` · hb ${s.heartbeatRate}/s (${s.heartbeats})` +
      ` · jobs running ${j.running} ok ${j.succeeded} failed ${j.failed} cancelled ${j.cancelled} declined ${j.declined}` +
      ` · registrations ${s.registrations} disconnects ${s.disconnects}` +
      (errors ? ` · errors ${errors}` : '')
    );
  }

  private scheduleSummary(interval: number): void {
    this.summaryTimer = this.timers.after(interval, () => {
      this.print(FleetSimulator.format(this.summary()));
      this.scheduleSummary(interval);
    });
  }

  private createAgent(i: number, mix: { item: LanguageProfile; weight: number }[]): NodeAgent {
    const o = this.opts;
    const random = this.random;
    const nodeId = `${o.idPrefix ?? 'sim'}-${String(i).padStart(4, '0')}`;
    const shape: NodeShape = {
      nodeId,
      profile: weightedPick(random, mix),
      services: o.services ?? ['asr', 'nmt', 'tts'],
      gpu: o.gpu === false ? null : GPUS[Math.floor(random() * GPUS.length)]!,
      cpuCores: [8, 16, 32][Math.floor(random() * 3)]!,
      memoryGb: [32, 64, 128][Math.floor(random() * 3)]!,
      maxJobs: o.maxJobs ?? 4,
    };
    this.shapes.push(shape);
    const registration = simulatedRegistration(shape);
    const base = {
      cpu: 5 + random() * 15,
      gpu: shape.gpu ? 2 + random() * 10 : 0,
      gpuMem: shape.gpu ? 20 + random() * 20 : 0,
      mem: 25 + random() * 20,
    };
    const load: Load = { ...base, base };
    const log = o.log?.child ? o.log.child({ nodeId }) : (o.log ?? silentLog);
    const agent: NodeAgent = new NodeAgent({
      // node i starts on gateway i mod n (and moves on from there), so a fleet spreads over
      // every gateway instead of piling onto the first
      gatewayUrls: o.gatewayUrls.map((_, k) => o.gatewayUrls[(i + k) % o.gatewayUrls.length]!),
      token: o.token,
      registration,
      heartbeat: () => this.walk(load, agent.runningJobs, shape.gpu !== null),
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      spreadFirstInterval: true,
      handler: simulatedHandler({ ...o.job, timers: this.timers, random }),
      timers: this.timers,
      random,
      log,
      shutdownGraceMs: o.shutdownGraceMs ?? 5000,
    });
    return agent;
  }

  /** Node i as a lingua client: core or full bundle, its profile's ASR languages × themselves. */
  private createLingua(i: number, mix: { item: LanguageProfile; weight: number }[]): LinguaNodeAgent {
    const o = this.opts;
    const random = this.random;
    const profile = weightedPick(random, mix);
    const gpu = o.gpu === false ? null : GPUS[Math.floor(random() * GPUS.length)]!;
    const shape = {
      bundle: this.linguaNodes.length % 2 === 0 ? ('core' as const) : ('full' as const),
      languages: profile.asr,
      tts: profile.tts,
      gpu,
      cpuCores: [8, 16, 32][Math.floor(random() * 3)]!,
      memoryGb: [32, 64, 128][Math.floor(random() * 3)]!,
    };
    const base = {
      cpu: 5 + random() * 15,
      gpu: gpu ? 2 + random() * 10 : 0,
      gpuMem: 20,
      mem: 25 + random() * 20,
    };
    const load: Load = { ...base, base };
    return new LinguaNodeAgent({
      gatewayUrls: o.gatewayUrls.map((_, k) => o.gatewayUrls[(i + k) % o.gatewayUrls.length]!),
      token: o.token,
      shape,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      job: o.job,
      usage: (running) => {
        const u = this.walk(load, running, gpu !== null).resource_usage;
        return {
          cpu: u.cpu_percent,
          gpu: u.gpu_percent ?? null,
          gpuMem: u.gpu_mem_percent ?? null,
          mem: u.mem_percent,
          runningJobs: running,
        };
      },
      timers: this.timers,
      random,
      log: o.log?.child ? o.log.child({ lingua: i }) : (o.log ?? silentLog),
    });
  }

  /** One step of a mean-reverting random walk whose targets rise with the running jobs. */
  private walk(load: Load, running: number, gpu: boolean): HeartbeatParts {
    const vol = this.opts.loadVolatility ?? 3;
    const step = (x: number, target: number) =>
      Math.min(100, Math.max(0, x + 0.3 * (target - x) + vol * normal(this.random)));
    load.cpu = step(load.cpu, load.base.cpu + 12 * running);
    load.mem = step(load.mem, load.base.mem + 4 * running);
    const usage: HeartbeatParts['resource_usage'] = {
      cpu_percent: round1(load.cpu),
      mem_percent: round1(load.mem),
    };
    if (gpu) {
      load.gpu = step(load.gpu, load.base.gpu + 17 * running);
      load.gpuMem = step(load.gpuMem, load.base.gpuMem + 8 * running);
      usage.gpu_percent = round1(load.gpu);
      usage.gpu_mem_percent = round1(load.gpuMem);
    }
    return { resource_usage: usage };
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
