/** The jobs scenario's result record, its goals, and what it prints. */
import type { FleetSummary } from '../../agent/fleet-simulator.ts';
import type { CpuUsage } from '../lib/cpu.ts';
import type { Environment } from '../lib/environment.ts';
import type { BenchOptions } from '../lib/options.ts';
import { fmt, printTable } from '../lib/report.ts';
import type { Goal } from '../lib/scenario.ts';
import type { SampleSummary } from '../lib/stats.ts';
import type { JobCounts, JobLatencies } from './analysis.ts';
import type { ClientTotals } from './client.child.ts';
import type { LoopDelay } from './loop-delay.ts';
import type { ServiceWindow } from './metrics.ts';
import type { UnresolvedJobs } from './stuck.ts';
import type { ClockCheck } from './services.ts';

export interface JobsSettings {
  nodes: number;
  /** Offered POST /v1/jobs per second (open loop). */
  rate: number;
  durationS: number;
  warmupS: number;
  /** Simulated job duration, fixed (lognormal sigma 0). */
  jobMs: number;
  /** max_concurrent_jobs of every node. */
  maxJobs: number;
  /** wait_ms of each long-poll GET. */
  waitMs: number;
  /** A placed job not finished this long after its POST is given up (unresolved). */
  giveUpMs: number;
  fleetSeed: number;
  rampUpMs: number;
}

export interface JobsResult {
  scenario: 'jobs';
  startedAt: string;
  finishedAt: string;
  options: BenchOptions;
  settings: JobsSettings;
  environment: Environment & {
    loadavgEnd: number[];
    redis: string;
    taskset: boolean;
    pinning: Record<string, number> | null;
  };
  warnings: string[];
  setup: {
    shards: number;
    env: Record<string, Record<string, string>>;
    /** The services' effective settings that shape the figures (defaults included). */
    serviceSettings: Record<string, number | string | boolean>;
    jobMix: { name: string; servedBy: string }[];
  };
  fleetStart: { registered: number; seconds: number; readyInSelectorS: number };
  clocks: { fleet: ClockCheck; client: ClockCheck };
  window: {
    seconds: number;
    cpu: CpuUsage;
    services: ServiceWindow;
    loop: { fleet: LoopDelay; client: LoopDelay };
    fleetBefore: FleetSummary | null;
    fleetAfter: FleetSummary | null;
  };
  /** From the end of fleet registration to the end of the run (after every measured job resolved). */
  wholeRun: { timeouts: Record<string, number>; reservationConflicts: number; reconciled: number };
  client: ClientTotals;
  /** Placed jobs the client gave up on, as Redis holds them after the run. */
  unresolved: UnresolvedJobs;
  counts: JobCounts;
  latency: JobLatencies;
  fleetAssigns: {
    assigns: number;
    accepted: number;
    duplicate: number;
    declined: number;
    laterAttempts: number;
  };
  exits: Record<string, { code: number | null; signal: string | null } | null>;
  goals: Goal[];
}

export function evaluateGoals(r: JobsResult): Goal[] {
  const c = r.counts;
  const timeouts = Object.values(r.wholeRun.timeouts).reduce((a, b) => a + b, 0);
  return [
    {
      name: 'measured jobs placed (201)',
      target: 'all',
      value: `${fmt.int(c.placed)} of ${fmt.int(c.measured)}`,
      pass: c.measured > 0 && c.placed === c.measured,
    },
    {
      name: 'placed jobs finished',
      target: 'all',
      value: `${fmt.int(c.finished)} of ${fmt.int(c.placed)} (failed ${c.failed}, unresolved ${c.unresolved})`,
      pass: c.placed > 0 && c.finished === c.placed,
    },
    {
      name: 'job timeouts (worker, whole run)',
      target: '0',
      value: fmt.int(timeouts),
      pass: timeouts === 0,
    },
    {
      name: "(c) result visible after the node's job_result, p99",
      target: '≤ 5 ms',
      value: fmt.ms(r.latency.resultToVisible?.p99, 2),
      pass: r.latency.resultToVisible ? r.latency.resultToVisible.p99 <= 5 : null,
    },
  ];
}

const lat = (s: SampleSummary | null | undefined): (string | number)[] =>
  s
    ? [fmt.ms(s.p50, 1), fmt.ms(s.p90, 1), fmt.ms(s.p99, 1), fmt.ms(s.max, 1), fmt.int(s.count)]
    : ['–', '–', '–', '–', '0'];

export function printJobsSummary(r: JobsResult): void {
  const s = r.settings;
  const w = r.window;
  const c = r.counts;
  const l = r.latency;
  const sv = w.services;
  console.log(
    `\njobs — ${fmt.int(s.nodes)} simulated nodes (max_concurrent_jobs ${s.maxJobs}, jobs of ${s.jobMs} ms), ` +
      `${fmt.int(s.rate)} jobs/s offered open loop, ${s.warmupS} s warm-up + ${s.durationS} s measured; ` +
      `${r.environment.cpus} cores (${r.environment.pinning ? 'pinned' : 'NOT pinned'}), redis ${r.environment.redis}, ` +
      `node ${r.environment.node}, load avg ${r.environment.loadavg[0]} → ${r.environment.loadavgEnd[0]}`,
  );
  console.log(
    `fleet: ${fmt.int(r.fleetStart.registered)} nodes registered in ${r.fleetStart.seconds.toFixed(1)} s, ` +
      `all ready in the selector ${r.fleetStart.readyInSelectorS.toFixed(1)} s later; clocks: fleet ` +
      `${r.clocks.fleet.offsetMs.toFixed(3)} ± ${r.clocks.fleet.uncertaintyMs.toFixed(3)} ms, client ` +
      `${r.clocks.client.offsetMs.toFixed(3)} ± ${r.clocks.client.uncertaintyMs.toFixed(3)} ms from the orchestrator's\n`,
  );
  const statuses = Object.entries(c.statuses)
    .map(([k, v]) => `${k} × ${fmt.int(v)}`)
    .join(', ');
  console.log(
    `measured: ${fmt.int(c.measured)} jobs sent in ${r.client.windowS.toFixed(1)} s (${fmt.int(c.measured / r.client.windowS)}/s): ${statuses}; ` +
      `finished ${fmt.int(c.finished)}, failed ${fmt.int(c.failed)}` +
      (c.failed ? ` (${JSON.stringify(c.failedBy)})` : '') +
      `, unresolved ${fmt.int(c.unresolved)}`,
  );
  if (c.firstError) console.log(`  first error: ${c.firstError}`);
  if (c.unresolved) {
    console.log(
      `  unresolved by record status: ${JSON.stringify(r.unresolved.byStatus)}; stuck for good ${r.unresolved.stuck}` +
        `${r.unresolved.stuck ? ` (e.g. ${r.unresolved.stuckJobs[0]!.id}, ${r.unresolved.stuckJobs[0]!.status})` : ''}, ` +
        `still held ${r.unresolved.held}`,
    );
  }
  const timeouts = Object.entries(r.wholeRun.timeouts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  console.log(
    `reservation conflicts: ${fmt.int(c.reservationConflicts)} in measured answers (${fmt.int(c.placedAfterConflict)} jobs placed after one), ` +
      `${fmt.int(r.wholeRun.reservationConflicts)} whole run (selector counter); timeouts (worker): ${timeouts || '0'}; ` +
      `failed over ${c.failedOver}; job_assign missing ${c.assignMissing}, repeated ${c.assignRepeated}, declined ${c.declined}`,
  );
  console.log(
    `job_assign received before the selector recorded the dispatch: ${fmt.int(c.assignBeforeDispatch)} of ${fmt.int(c.placed)}; ` +
      `finished records without accepted_at ${fmt.int(c.recordMissing.accepted)}, without started_at ${fmt.int(c.recordMissing.started)}\n`,
  );

  printTable(
    ['latency from POST sent', 'p50', 'p90', 'p99', 'max', 'jobs'],
    [
      ['POST answered 201', ...lat(l.submitToPlaced)],
      ['(a) job_assign received by the node', ...lat(l.submitToAssign)],
      ['(b) result visible (GET → finished)', ...lat(l.submitToVisible)],
      ['stages, first-attempt jobs ¹:', '', '', '', '', ''],
      ['  created (selector claimed the id)', ...lat(l.stages.created)],
      ['  dispatched (reserved, in the inbox)', ...lat(l.stages.dispatched)],
      ['  job_assign received (fleet)', ...lat(l.stages.assignReceived)],
      ['  accepted (job_ack applied)', ...lat(l.stages.accepted)],
      ['  started (job_started applied)', ...lat(l.stages.started)],
      ['  finished (job_result stored)', ...lat(l.stages.finished)],
      ['  visible to the client', ...lat(l.stages.visible)],
      ['result stored → seen by the long-poll', ...lat(l.storedToSeen)],
      ["(c) node's job_result sent → result visible", ...lat(l.resultToVisible)],
      ['send lateness (open-loop schedule)', ...lat(l.sendLateness)],
    ],
  );
  console.log(
    [
      "  ¹ the job record's timestamps (services' Date.now(), whole ms) minus the client's POST sent",
      `  waiting GET: /v1/jobs/:id?wait_ms=${s.waitMs} right after the 201 (woken by the job shard's announcement); ` +
        `${fmt.int(r.client.getsTotal)} GETs (${fmt.int(r.client.getsNotTerminal)} ended before the job), ≤ ${fmt.int(r.client.getsInFlightMax)} in flight; ` +
        `per GET, waiting for a pooled socket p50 ${fmt.ms(r.client.getQueuedMs?.p50, 1)} p99 ${fmt.ms(r.client.getQueuedMs?.p99, 1)}, ` +
        `then answered p50 ${fmt.ms(r.client.getServedMs?.p50, 1)} p99 ${fmt.ms(r.client.getServedMs?.p99, 1)}`,
      `  (b) worst per second of the window: ${l.visibleMaxBySecond.map((x) => Math.round(x)).join(' ')} ms`,
    ].join('\n'),
  );

  const cpu = w.cpu.processes;
  const rt = sv.runtime;
  const service = (x: { loopP99Ms: number; gcS: number }) =>
    `loop p99 ${fmt.ms(x.loopP99Ms, 1)}, GC ${fmt.int(x.gcS * 1000)} ms`;
  const child = (x: LoopDelay) => `loop p99 ${fmt.ms(x.p99Ms, 1)}, max ${fmt.ms(x.maxMs, 1)}`;
  const order: [string, string][] = [
    ['selector', service(rt.selector)],
    ['gateway', service(rt.gateway)],
    ['worker', service(rt.worker)],
    ['redis', ''],
    ['fleet', child(w.loop.fleet)],
    ['client', child(w.loop.client)],
    ['orchestrator', ''],
  ];
  const pinning = r.environment.pinning ?? {};
  // CPU per job: % of a core over the window ÷ jobs sent per second in it
  const jobsPerS = c.measured / r.client.windowS;
  const perJob = (pct: number | null | undefined) =>
    pct === undefined || pct === null || !(jobsPerS > 0) ? '–' : `${fmt.int((pct * 10_000) / jobsPerS)} µs`;
  console.log('');
  printTable(
    [`CPU over the window (${w.seconds.toFixed(1)} s)`, '% of a core', 'per job', 'core', 'notes'],
    [
      ...order.map(([name, notes]) => [
        name,
        fmt.pct(cpu[name]),
        perJob(cpu[name]),
        pinning[name] ?? '–',
        notes,
      ]),
      ['other (outside these processes)', fmt.pct(w.cpu.unaccountedPct), '', '', ''],
      ...Object.entries(w.cpu.cores).map(([core, u]) => [
        `${core} busy`,
        fmt.pct(u.busyPct),
        '',
        '',
        u.stealPct ? `steal ${fmt.pct(u.stealPct)}` : '',
      ]),
    ],
  );
  const rejected = Object.entries(sv.gateway.rejected)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  console.log(
    `  selector: POST inside p50 ${fmt.ms(sv.selector.requestP50Ms)}, p99 ${fmt.ms(sv.selector.requestP99Ms)}, ` +
      `choice p99 ${fmt.ms(sv.selector.selectionP99Ms, 3)}; gateway: ${fmt.int(sv.gateway.heartbeatsApplied / sv.seconds)} heartbeats/s` +
      `${rejected ? `, rejected ${rejected}` : ''}; worker: ${fmt.int(sv.worker.deltasPublished / sv.seconds)} deltas/s, ` +
      `${fmt.int(sv.worker.nodesPublished / sv.seconds)} nodes published/s`,
  );

  console.log('');
  printTable(
    ['goal', 'target', 'measured', ''],
    r.goals.map((g) => [g.name, g.target, g.value, g.pass === null ? 'n/a' : g.pass ? 'PASS' : 'FAIL']),
  );
  if (r.warnings.length) console.log(`\nwarnings:\n  ${r.warnings.join('\n  ')}`);
}
