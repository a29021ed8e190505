/**
 * The heartbeat scenario's scaling phase (issue 13 deliverable 2): the max sustained rate of a
 * gateway with SB_GATEWAY_PROCESSES=1 and then =N, each ramped the same way from a fresh start
 * (new gateway, new load generator, the same nodes registered again), with the gateway
 * processes allowed on BOTH cores (taskset -c 0,1) in both runs — the one condition in which a
 * second process has a core to use on a 2-core machine. Redis and the load generator stay on
 * core 0, so they compete with the gateway process(es) there: the ratio is a lower bound of what
 * a second dedicated core would give, and is stated with that condition.
 */
import { CpuMeter } from '../lib/cpu.ts';
import type { Supervisor } from '../lib/processes.ts';
import { fmt, progress } from '../lib/report.ts';
import type { BenchOptions } from '../lib/options.ts';
import { rampSearch, type RampResult } from './ramp.ts';
import { newSecrets, startGateway, startLoadGenerator } from './services.ts';
import { registerNodes, SHARDS } from './setup.ts';
import { measureStep, type StepResult } from './step.ts';

export interface ScaleRun {
  processes: number;
  /** taskset list of the gateway processes (null: unpinned). */
  cores: string | null;
  start: StepResult;
  ramp: RampResult;
}

export interface ScaleResult {
  runs: ScaleRun[];
  /** max sustained with N processes ÷ with 1, both ramped in this run. */
  ratio: number | null;
  conditions: string;
}

export async function scalePhase(
  sup: Supervisor,
  o: BenchOptions,
  opts: {
    redisUrl: string;
    redisPid: number | undefined;
    prefix: string;
    pinned: boolean;
    core: (c: number) => number | null;
    p99GoalMs: number;
    startRate: number;
  },
): Promise<ScaleResult> {
  const cores = opts.pinned ? '0,1' : null;
  const runs: ScaleRun[] = [];
  for (const processes of [1, o.processes]) {
    progress(`scaling: ${processes} gateway process(es)${cores ? ` on cores ${cores}` : ''}`);
    const secrets = newSecrets();
    const gateway = await startGateway(sup, {
      redisUrl: opts.redisUrl,
      prefix: `${opts.prefix}p${processes}`, // fresh keys: the nodes register anew
      shards: SHARDS,
      wsRateLimit: Math.max(50, Math.ceil((2 * o.maxRate) / o.nodes)),
      cpu: cores,
      profileDir: null,
      nodeArgs: [],
      secrets,
      extraEnv: { SB_GATEWAY_PROCESSES: String(processes) },
      gcTrace: true,
    });
    const loadgen = startLoadGenerator(sup, opts.core(0));
    const cpu = new CpuMeter();
    cpu.track('gateway', gateway.proc.pid);
    cpu.track('loadgen', loadgen.proc.pid);
    cpu.track('redis', opts.redisPid);
    try {
      await new Promise((r) => setTimeout(r, 1000)); // every process listening
      await registerNodes(loadgen, gateway, o.nodes);
      const ctx = {
        loadgen: loadgen.ipc,
        metricsUrl: `http://127.0.0.1:${gateway.port}/metrics`,
        cpu,
        gcTrace: gateway.gcTrace ?? undefined,
      };
      const start = await measureStep(ctx, Math.round(opts.startRate), o.rampSettleS, o.rampStepS);
      const ramp = await rampSearch(ctx, {
        start,
        maxRate: o.maxRate,
        settleS: o.rampSettleS,
        measureS: o.rampStepS,
        p99GoalMs: opts.p99GoalMs,
        onStep: (rate) => progress(`scaling, ${processes} process(es): offering ${fmt.int(rate)}/s`),
      });
      runs.push({ processes, cores, start, ramp });
      progress(`scaling: ${processes} process(es) sustained ${fmt.int(ramp.maxSustained ?? 0)}/s`);
    } finally {
      await loadgen.close();
      await gateway.stop();
    }
  }
  const [one, many] = runs;
  const ratio =
    one?.ramp.maxSustained && many?.ramp.maxSustained ? many.ramp.maxSustained / one.ramp.maxSustained : null;
  return {
    runs,
    ratio,
    conditions: cores
      ? `gateway process(es) on cores ${cores} (taskset), redis-server and the load generator on core 0 too: they compete with the gateway there`
      : 'nothing pinned (no taskset)',
  };
}
