/** The heartbeat scenario's result record, its goals, and the compact table it prints. */
import type { CpuUsage } from '../lib/cpu.ts';
import { printProfile, type ProfileSummary } from '../lib/cpu-profile.ts';
import type { Environment } from '../lib/environment.ts';
import type { BenchOptions } from '../lib/options.ts';
import { fmt, printTable, type Cell } from '../lib/report.ts';
import type { Goal } from '../lib/scenario.ts';
import type { BaselineResult } from './evalsha-baseline.child.ts';
import type { QueueActivity } from './queue-events.ts';
import type { RampResult } from './ramp.ts';
import type { ScaleResult } from './scale.ts';
import type { StepResult } from './step.ts';

export const GOALS = {
  sustainedPerSec: 10_000,
  p99Ms: 5,
  ratio: 0.5,
  bytesPerHeartbeat: 2048,
  processRatio: 1.7,
} as const;

export interface HeartbeatResult {
  scenario: 'heartbeat';
  startedAt: string;
  finishedAt: string;
  options: BenchOptions;
  environment: Environment & {
    loadavgEnd: number[];
    redis: string;
    taskset: boolean;
    pinning: Record<string, number> | null;
  };
  warnings: string[];
  setup: { nodes: number; shards: number; gatewayEnv: Record<string, string>; registerConcurrency: number };
  registration: { nodes: number; seconds: number; perSec: number };
  main: StepResult;
  baseline: BaselineResult & { cpu: CpuUsage };
  ramp: RampResult | null;
  queues: { snapshotFlush: QueueActivity };
  gateway: { rssBytes: number | null; exit: { code: number | null; signal: string | null } | null };
  /** 1 -> N gateway processes (null: --no-scale). */
  scaling: ScaleResult | null;
  profile: ProfileSummary | null;
  goals: Goal[];
}

/** Gateway max sustained heartbeats/s: from the ramp, or the main phase alone when it kept up. */
export function gatewayMax(r: Pick<HeartbeatResult, 'ramp' | 'main'>): number | null {
  if (r.ramp) return r.ramp.maxSustained;
  return r.main.pass ? r.main.appliedRate : null;
}

export function ratioOf(r: HeartbeatResult): number | null {
  const max = gatewayMax(r);
  return max === null || r.baseline.callsPerSec <= 0 ? null : max / r.baseline.callsPerSec;
}

/** Cores the rate goals need: the gateway's, Redis', the load generator's, a second gateway's. */
const JUDGE_CORES = 4;
/** Other tenants' CPU (% of a core) beyond which rates measure the neighbours. */
const JUDGE_OTHER_PCT = 25;

/**
 * Why the rate goals (sustained, p99, ratio to raw EVALSHA, 2 ÷ 1 processes) cannot be judged
 * on this run, or null: each of them assumes the gateway, Redis and the load generator do not
 * share a core with each other or with other tenants.
 */
export function notJudgeable(r: Pick<HeartbeatResult, 'environment' | 'main'>): string | null {
  const why: string[] = [];
  if (r.environment.cpus < JUDGE_CORES)
    why.push(
      `${r.environment.cpus} cores: gateway, Redis and load generator share them (${JUDGE_CORES} needed)`,
    );
  const other = r.main.cpu.unaccountedPct;
  if (other !== null && other > JUDGE_OTHER_PCT)
    why.push(`other tenants used ${Math.round(other)} % of a core (≤ ${JUDGE_OTHER_PCT} needed)`);
  return why.length ? why.join('; ') : null;
}

/**
 * What CPU says where rates cannot: Redis CPU per heartbeat (the script, its I/O and the derived
 * enqueue) ÷ the gateway's. With each on a core of its own, the gateway's max ÷ raw EVALSHA would
 * be about this (each saturating its core); independent of the machine's other load.
 */
export function cpuRatioOf(s: StepResult): number | null {
  const redisPct = s.cpu.processes['redis'];
  if (s.gatewayCpuUsPerHeartbeat == null || s.gatewayCpuUsPerHeartbeat <= 0 || redisPct == null) return null;
  if (s.appliedRate <= 0) return null;
  const redisUs = ((redisPct / 100) * 1e6) / s.appliedRate;
  return redisUs / s.gatewayCpuUsPerHeartbeat;
}

export function evaluateGoals(r: HeartbeatResult): Goal[] {
  return judged(r, notJudgeable(r));
}

function judged(r: HeartbeatResult, unjudgeable: string | null): Goal[] {
  const rated = (g: Goal): Goal =>
    unjudgeable === null ? g : { ...g, value: `${g.value} (not judgeable: ${unjudgeable})`, pass: null };
  const cpuRatio = cpuRatioOf(r.main);
  const max = gatewayMax(r);
  const ratio = ratioOf(r);
  const p99 = r.main.latencyMs.p99;
  const lowerBound = r.ramp?.lowerBound ? '≥ ' : '';
  const scaling = r.scaling;
  const scaleGoal: Goal[] = scaling
    ? [
        {
          name: `${scaling.runs[1]?.processes ?? '?'} gateway processes ÷ 1 (max sustained)`,
          target: `≥ ${GOALS.processRatio}`,
          value: scaling.ratio === null ? '–' : fmt.ratio(scaling.ratio),
          pass: scaling.ratio === null ? null : scaling.ratio >= GOALS.processRatio,
        },
      ].map(rated)
    : [];
  return [
    rated({
      name: 'sustained heartbeats/s (one gateway)',
      target: `≥ ${fmt.int(GOALS.sustainedPerSec)}`,
      value: max === null ? 'none kept up' : `${lowerBound}${fmt.int(max)}`,
      pass: max === null ? false : max >= GOALS.sustainedPerSec,
    }),
    rated({
      name: `p99 server latency at ${fmt.int(r.main.offeredRate)}/s`,
      target: `≤ ${GOALS.p99Ms} ms`,
      value: p99 === null ? '–' : `${r.main.latencyMs.overflow ? '> ' : ''}${fmt.ms(p99)}`,
      pass: p99 === null ? null : !r.main.latencyMs.overflow && p99 <= GOALS.p99Ms && r.main.pass,
    }),
    {
      name: `allocated per heartbeat at ${fmt.int(r.main.offeredRate)}/s`,
      target: `≤ ${fmt.int(GOALS.bytesPerHeartbeat)} B`,
      value: r.main.alloc?.bytesPerHeartbeat == null ? '–' : `${fmt.int(r.main.alloc.bytesPerHeartbeat)} B`,
      pass:
        r.main.alloc?.bytesPerHeartbeat == null
          ? null
          : r.main.alloc.bytesPerHeartbeat <= GOALS.bytesPerHeartbeat,
    },
    rated({
      name: 'ratio gateway max ÷ raw EVALSHA',
      target: `≥ ${GOALS.ratio}`,
      value: ratio === null ? '–' : `${lowerBound}${fmt.ratio(ratio)}`,
      pass: ratio === null ? null : ratio >= GOALS.ratio,
    }),
    {
      name: `… by CPU: Redis ÷ gateway µs per heartbeat at ${fmt.int(r.main.offeredRate)}/s (any machine)`,
      target: `≥ ${GOALS.ratio}`,
      value: cpuRatio === null ? '–' : fmt.ratio(cpuRatio),
      pass: cpuRatio === null ? null : cpuRatio >= GOALS.ratio,
    },
    ...scaleGoal,
  ];
}

/** Highest steal % of any core (a shared VM's hypervisor taking time). */
function maxSteal(cpu: CpuUsage): number | null {
  const steal = Object.values(cpu.cores).map((c) => c.stealPct);
  return steal.length ? Math.max(...steal) : null;
}

function stepRow(label: string, s: StepResult): Cell[] {
  const errors = Object.values(s.errorFrames).reduce((a, b) => a + b, 0);
  return [
    label,
    fmt.int(s.offeredRate),
    fmt.int(s.sentRate),
    fmt.int(s.appliedRate),
    fmt.ms(s.latencyMs.p50),
    `${s.latencyMs.overflow ? '>' : ''}${fmt.ms(s.latencyMs.p99)}`,
    errors,
    fmt.pct(s.cpu.processes['gateway']),
    fmt.pct(s.cpu.processes['redis']),
    fmt.pct(s.cpu.processes['loadgen']),
    fmt.pct(s.cpu.unaccountedPct),
    fmt.pct(maxSteal(s.cpu)),
    fmt.int(Object.values(s.gc).reduce((sum, g) => sum + g.ms, 0)),
    s.pass ? 'ok' : `FAIL (${s.limitedBy})`,
  ];
}

export function printHeartbeatSummary(r: HeartbeatResult): void {
  const o = r.options;
  console.log(
    `\nheartbeat — ${fmt.int(o.nodes)} nodes, ${r.environment.cpus} cores (${r.environment.pinning ? 'pinned' : 'NOT pinned'}), ` +
      `redis ${r.environment.redis}, node ${r.environment.node}, load avg ${r.environment.loadavg[0]} → ${r.environment.loadavgEnd[0]}`,
  );
  console.log(
    `registration: ${fmt.int(r.registration.nodes)} nodes in ${r.registration.seconds.toFixed(1)} s\n`,
  );
  const rows: Cell[][] = [stepRow(`main (${o.durationS} s)`, r.main)];
  for (const s of r.ramp?.steps.slice(1) ?? []) rows.push(stepRow('  ramp step', s));
  const b = r.baseline;
  rows.push([
    'raw EVALSHA',
    '–',
    '–',
    fmt.int(b.callsPerSec),
    fmt.ms(b.latencyMs.p50),
    fmt.ms(b.latencyMs.p99),
    b.failures,
    `${fmt.pct(b.cpu.processes['baseline'])}*`,
    fmt.pct(b.cpu.processes['redis']),
    '–',
    fmt.pct(b.cpu.unaccountedPct),
    fmt.pct(maxSteal(b.cpu)),
    '–',
    `window ${o.baselineWindow}`,
  ]);
  printTable(
    [
      'phase',
      'offered/s',
      'sent/s',
      'applied/s',
      'p50',
      'p99',
      'err frames',
      'gw CPU',
      'redis CPU',
      'lg CPU',
      'other',
      'steal',
      'GC ms',
      '',
    ],
    rows,
  );
  console.log(
    '  CPU in % of one core. other: busy time outside these processes (other tenants, softirq). ' +
      'GC ms: gateway GC pauses in the window (prom-client; under-reported once the gateway is saturated).\n  * raw EVALSHA: CPU of the baseline client process in the gw column; latencies client-side.',
  );

  const max = gatewayMax(r);
  console.log('');
  console.log(
    `gateway max sustained: ${max === null ? 'none kept up' : `${r.ramp?.lowerBound ? '≥ ' : ''}${fmt.int(max)}/s`}` +
      (r.ramp
        ? ` (offered ${fmt.int(r.ramp.maxSustainedOffered)}/s; peak applied ${fmt.int(r.ramp.peakApplied)}/s; ${r.ramp.stoppedBecause})`
        : ''),
  );
  if (r.ramp) {
    console.log(`max with p99 ≤ ${GOALS.p99Ms} ms:   ${fmt.int(r.ramp.maxWithinLatencyGoal)}/s`);
  }
  console.log(
    `raw EVALSHA:           ${fmt.int(b.callsPerSec)} calls/s (client CPU ${fmt.pct(b.cpu.processes['baseline'])}, ` +
      `Redis CPU ${fmt.pct(b.cpu.processes['redis'])})   ratio ${fmt.ratio(ratioOf(r))}`,
  );
  console.log(`snapshot-flush add calls during heartbeat phases: ${r.queues.snapshotFlush.addCalls}`);
  console.log(`per heartbeat (gateway, from --trace-gc-nvp and /proc; max-sustained step in brackets):`);
  const best = r.ramp?.steps.filter((s) => s.pass).sort((x, y) => y.appliedRate - x.appliedRate)[0];
  for (const [label, s] of [
    [`main ${fmt.int(r.main.offeredRate)}/s`, r.main],
    ...(best ? [[`max ${fmt.int(best.appliedRate)}/s`, best] as const] : []),
  ] as const) {
    const a = s.alloc;
    console.log(
      `  ${label}: ${a?.bytesPerHeartbeat == null ? '–' : fmt.int(a.bytesPerHeartbeat)} B allocated, ` +
        `${s.gatewayCpuUsPerHeartbeat == null ? '–' : fmt.int(s.gatewayCpuUsPerHeartbeat)} µs CPU; ` +
        (a
          ? `GC in ${fmt.int(s.windowS)} s: ${a.count['s'] ?? 0} scavenges (${fmt.int(a.pauseMs['s'] ?? 0)} ms), ` +
            `${a.markCompacts} mark-compacts (${fmt.int((a.pauseMs['mc'] ?? 0) + (a.pauseMs['ms'] ?? 0))} ms), ` +
            `${a.pausesOver5ms} pauses ≥ 5 ms, longest ${a.maxPauseMs.toFixed(1)} ms`
          : 'no GC trace'),
    );
  }
  if (r.scaling) {
    console.log(`scaling (${r.scaling.conditions}):`);
    for (const run of r.scaling.runs) {
      const best = run.ramp.steps.filter((s) => s.pass).sort((x, y) => y.appliedRate - x.appliedRate)[0];
      console.log(
        `  ${run.processes} process(es): max sustained ${fmt.int(run.ramp.maxSustained ?? 0)}/s` +
          (best
            ? ` (gateway CPU ${fmt.pct(best.cpu.processes['gateway'])}, redis ${fmt.pct(best.cpu.processes['redis'] ?? null)}, ` +
              `load generator ${fmt.pct(best.cpu.processes['loadgen'])}, p99 ${fmt.ms(best.latencyMs.p99)}, ` +
              `${best.gatewayCpuUsPerHeartbeat ?? '–'} µs CPU per heartbeat)`
            : '') +
          `; ${run.ramp.stoppedBecause}`,
      );
    }
    console.log(`  ratio ${fmt.ratio(r.scaling.ratio)}`);
  }
  if (r.main.errorFrames && Object.keys(r.main.errorFrames).length > 0) {
    console.log(`error frames in the main phase: ${JSON.stringify(r.main.errorFrames)}`);
  }
  if (r.profile) printProfile('gateway', r.profile);
  console.log('\ngoals:');
  printTable(
    ['goal', 'target', 'measured', ''],
    r.goals.map((g) => [g.name, g.target, g.value, g.pass === null ? 'n/a' : g.pass ? 'PASS' : 'FAIL']),
  );
  for (const w of r.warnings) console.log(`warning: ${w}`);
}
