/** The selector scenario's result record, its goals, and what it prints. */
import type { RampResult } from '../heartbeat/ramp.ts';
import type { RegistrationSummary } from '../heartbeat/setup.ts';
import type { StepResult } from '../heartbeat/step.ts';
import type { CpuUsage } from '../lib/cpu.ts';
import { printProfile, type ProfileSummary } from '../lib/cpu-profile.ts';
import type { Environment } from '../lib/environment.ts';
import type { BenchOptions } from '../lib/options.ts';
import { fmt, printTable, type Cell } from '../lib/report.ts';
import type { Goal } from '../lib/scenario.ts';
import type { ChoiceResult } from './choice.ts';
import type { JobWindowResult } from './window.ts';

export const GOALS = {
  choiceP99Us: 200,
  choiceAtNodes: 10_000,
  postP99Ms: 5,
  postAtRate: 1000,
  isolationRatio: 1.5,
} as const;

export interface SelectorResult {
  scenario: 'selector';
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
  setup: {
    shards: number;
    maxConcurrentJobs: number;
    nodeTtlMs: number;
    ackTimeoutMs: number;
    /** The job client's request mix, cycled. */
    jobKinds: string[];
    gatewayEnv: Record<string, string>;
    workerEnv: Record<string, string>;
    selectorEnv: Record<string, string>;
  };
  choice: ChoiceResult & { cpu: CpuUsage };
  registration: RegistrationSummary;
  /** First heartbeats sent → every node ready in the selector's replica. */
  readyAfterS: number;
  /** The storm-rate search (bursts, no jobs); null when --storm-rate was given. */
  stormSearch: RampResult | null;
  /** Offered heartbeats/s of the storm. */
  stormRate: number;
  /** The gateway's side of the storm window. */
  stormStep: StepResult;
  /** quiet, storm, quiet after. */
  windows: JobWindowResult[];
  clientTotals: { sent: number; answered: number; inFlight: number; notSent: number };
  exits: Record<string, { code: number | null; signal: string | null } | null>;
  profile: ProfileSummary | null;
  goals: Goal[];
}

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a == null || b == null || b <= 0 ? null : a / b;

function windowOf(r: SelectorResult, label: string): JobWindowResult | undefined {
  return r.windows.find((w) => w.label === label);
}

/** Answers that were not 201 (any other status, or none). */
function failures(w: JobWindowResult): number {
  const c = w.client;
  return c.scheduled - (c.statuses['201'] ?? 0);
}

export interface Isolation {
  /** sb_selection_duration_seconds p99, storm ÷ quiet (bucket-interpolated). */
  choiceHistogram: number | null;
  /** selection_us of the 201 answers (exact), p99 storm ÷ quiet. */
  choiceExact: number | null;
  /** Client-side POST p99 (scheduled → answered), storm ÷ quiet. */
  endToEnd: number | null;
  /** sb_job_request_duration_seconds p99, storm ÷ quiet. */
  server: number | null;
  /** The same four against the quiet window after the storm. */
  afterStorm: {
    choiceHistogram: number | null;
    choiceExact: number | null;
    endToEnd: number | null;
    server: number | null;
  };
}

export function isolationOf(r: SelectorResult): Isolation {
  const quiet = windowOf(r, 'quiet');
  const storm = windowOf(r, 'storm');
  const after = windowOf(r, 'quiet after');
  const four = (base: JobWindowResult | undefined) => ({
    choiceHistogram: ratio(storm?.selector.selectionMs.p99, base?.selector.selectionMs.p99),
    choiceExact: ratio(storm?.client.selectionUs?.p99, base?.client.selectionUs?.p99),
    endToEnd: ratio(storm?.client.latencyMs?.p99, base?.client.latencyMs?.p99),
    server: ratio(storm?.selector.requestMs.p99, base?.selector.requestMs.p99),
  });
  return { ...four(quiet), afterStorm: four(after) };
}

export function evaluateGoals(r: SelectorResult): Goal[] {
  const c = r.choice;
  const worst = [...c.kinds].sort((a, b) => b.us.p99 - a.us.p99)[0];
  const zhEn = c.kinds[0];
  const atScale = c.nodes >= GOALS.choiceAtNodes;
  const choicePass = c.all.p99 <= GOALS.choiceP99Us;
  const quiet = windowOf(r, 'quiet');
  const p99 = quiet?.client.latencyMs?.p99 ?? null;
  const clean = quiet !== undefined && failures(quiet) === 0;
  const postPass = p99 !== null && p99 <= GOALS.postP99Ms && clean;
  const iso = isolationOf(r);
  const isoGoal = (name: string, value: number | null, detail: string): Goal => ({
    name,
    target: `≤ ${GOALS.isolationRatio}`,
    value: value === null ? '–' : `${fmt.ratio(value)} (${detail})`,
    pass: value === null ? null : value <= GOALS.isolationRatio,
  });
  const storm = windowOf(r, 'storm');
  return [
    {
      name: `choice p99, in process, ${fmt.int(c.nodes)} nodes (mix of ${c.kinds.length} kinds)`,
      target: `≤ ${GOALS.choiceP99Us} µs at ${fmt.int(GOALS.choiceAtNodes)}`,
      value:
        `mix ${fmt.int(c.all.p99)} µs; ${zhEn?.name} ${fmt.int(zhEn?.us.p99)} µs; ` +
        `worst ${worst?.name} ${fmt.int(worst?.us.p99)} µs`,
      // Below the goal's fleet size a low figure proves nothing; a high one fails anyway.
      pass: !choicePass ? false : atScale ? true : null,
    },
    {
      name: `POST /v1/jobs p99, client side, at ${fmt.int(r.options.jobRate)}/s (quiet)`,
      target: `≤ ${GOALS.postP99Ms} ms at ${fmt.int(GOALS.postAtRate)}/s`,
      value:
        p99 === null
          ? '–'
          : `${fmt.ms(p99)}${clean ? '' : `, ${fmt.int(quiet ? failures(quiet) : null)} not 201`}`,
      pass: !postPass ? (p99 === null ? null : false) : r.options.jobRate >= GOALS.postAtRate ? true : null,
    },
    isoGoal(
      'isolation: choice p99 storm ÷ quiet (sb_selection_duration_seconds)',
      iso.choiceHistogram,
      `${fmt.int(ms2us(storm?.selector.selectionMs.p99))} ÷ ${fmt.int(ms2us(quiet?.selector.selectionMs.p99))} µs`,
    ),
    isoGoal(
      'isolation: POST p99 storm ÷ quiet (client side)',
      iso.endToEnd,
      `${fmt.ms(storm?.client.latencyMs?.p99)} ÷ ${fmt.ms(quiet?.client.latencyMs?.p99)}`,
    ),
  ];
}

const ms2us = (x: number | null | undefined): number | null => (x == null ? null : x * 1000);
const us = (x: number | null | undefined): string => fmt.int(x);

function printChoice(r: SelectorResult): void {
  const c = r.choice;
  console.log(
    `\n1. in-process choice — select() over ${fmt.int(c.nodes)} synthetic nodes, ${c.profiles.length} capability profiles, ` +
      `${fmt.int(c.callsPerKind)} timed calls per kind after ${fmt.int(c.warmupCalls)} warm-up (p2c, affinity on, ` +
      `threshold 85, knownLoad for ${fmt.int(c.knownLoadNodes)} nodes); other ${fmt.pct(c.cpu.unaccountedPct)}`,
  );
  console.log(
    `   index sizes: ${Object.entries(c.pools)
      .map(([k, v]) => `${k} ${fmt.int(v)}`)
      .join(', ')}; heap ${c.heapMb} MB`,
  );
  const rows: Cell[][] = c.kinds.map((k) => [
    k.name,
    fmt.int(k.candidates),
    fmt.int(k.eligible),
    us(k.us.p50),
    us(k.us.p90),
    us(k.us.p99),
    us(k.us.max),
    us(k.cpuUsMean),
  ]);
  rows.push([
    'mix (all kinds, equal weight)',
    '',
    '',
    us(c.all.p50),
    us(c.all.p90),
    us(c.all.p99),
    us(c.all.max),
    us(c.allCpuUsMean),
  ]);
  printTable(
    ['request kind', 'candidates', 'eligible', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs', 'CPU µs/call'],
    rows,
  );
}

function latencyRow(w: JobWindowResult): Cell[] {
  const c = w.client;
  const other = c.scheduled - c.notSent - (c.statuses['201'] ?? 0) - (c.statuses['503'] ?? 0);
  const server = w.selector.requestMs;
  return [
    w.label,
    fmt.int(c.answered / c.seconds),
    fmt.int(c.statuses['201'] ?? 0),
    fmt.int(c.statuses['503'] ?? 0),
    fmt.int(other),
    fmt.int(c.notSent),
    fmt.int(w.selector.reservationConflicts),
    fmt.ms(c.latencyMs?.p50),
    fmt.ms(c.latencyMs?.p99),
    fmt.ms(c.latencyMs?.max, 1),
    `${fmt.ms(server.p50)} / ${server.overflow ? '>' : ''}${fmt.ms(server.p99)}`,
    `${us(c.selectionUs?.p50)} / ${us(c.selectionUs?.p99)}`,
    `${w.selector.selectionMs.overflow ? '>' : ''}${us(ms2us(w.selector.selectionMs.p99))}`,
    `${fmt.ms(w.redisPingMs?.p50)} / ${fmt.ms(w.redisPingMs?.p99)}`,
  ];
}

function loadRow(w: JobWindowResult): Cell[] {
  const p = w.cpu.processes;
  return [
    w.label,
    fmt.int(w.heartbeats.appliedPerSec),
    fmt.int(w.snapshot.deltasPerSec),
    fmt.int(w.snapshot.publishedNodesPerSec),
    fmt.pct(p['selector']),
    fmt.pct(p['jobclient']),
    fmt.pct(p['gateway']),
    fmt.pct(p['redis']),
    fmt.pct(p['worker']),
    fmt.pct(p['loadgen']),
    fmt.pct(w.cpu.cores['cpu0']?.busyPct),
    fmt.pct(w.cpu.cores['cpu1']?.busyPct),
    fmt.pct(w.cpu.unaccountedPct),
    fmt.int(Object.values(w.selector.gc).reduce((sum, g) => sum + g.ms, 0)),
    fmt.ms(w.selector.eventLoopLagMs?.p99, 1),
    // heartbeat received → applied by the replica; without heartbeats it is only the age of
    // the last one (entries republished for reservations keep their old heartbeat time)
    w.heartbeats.appliedPerSec > 0
      ? `${fmt.int(w.selector.replicaStalenessMs?.p50)} / ${fmt.int(w.selector.replicaStalenessMs?.p99)}`
      : 'n/a',
  ];
}

/** CPU (µs of one core) and Redis commands per placed job over a window. */
export function perJob(w: JobWindowResult): {
  placedPerSec: number;
  cpuUs: Record<'selector' | 'redis' | 'worker' | 'gateway', number | null>;
  commands: number | null;
  evalsha: number | null;
} {
  const placed = w.client.statuses['201'] ?? 0;
  const per = (pct: number | null | undefined) =>
    placed > 0 && pct !== null && pct !== undefined ? ((pct / 100) * w.windowS * 1e6) / placed : null;
  const p = w.cpu.processes;
  const cmds = w.redisCommands;
  return {
    placedPerSec: placed / w.windowS,
    cpuUs: {
      selector: per(p['selector']),
      redis: per(p['redis']),
      worker: per(p['worker']),
      gateway: per(p['gateway']),
    },
    commands: placed > 0 ? cmds.total / placed : null,
    evalsha: placed > 0 ? ((cmds.byCommand['evalsha'] ?? 0) + (cmds.byCommand['eval'] ?? 0)) / placed : null,
  };
}

function perJobRow(w: JobWindowResult): Cell[] {
  const j = perJob(w);
  const sum =
    j.cpuUs.selector === null || j.cpuUs.redis === null || j.cpuUs.worker === null
      ? null
      : j.cpuUs.selector + j.cpuUs.redis + j.cpuUs.worker;
  const placed = w.client.statuses['201'] ?? 0;
  const top = Object.entries(w.redisCommands.byCommand)
    .sort((x, y) => y[1] - x[1])
    .slice(0, 5)
    .map(([name, n]) => `${name} ${placed > 0 ? (n / placed).toFixed(2) : '-'}`)
    .join(', ');
  return [
    w.label,
    fmt.int(j.placedPerSec),
    fmt.int(j.cpuUs.selector),
    fmt.int(j.cpuUs.redis),
    fmt.int(j.cpuUs.worker),
    fmt.int(sum),
    fmt.int(j.cpuUs.gateway),
    j.commands === null ? '-' : j.commands.toFixed(1),
    j.evalsha === null ? '-' : j.evalsha.toFixed(2),
    top,
  ];
}

export function printSelectorSummary(r: SelectorResult): void {
  const o = r.options;
  console.log(
    `\nselector — ${r.environment.cpus} cores (${r.environment.pinning ? 'pinned: the selector alone on core 1 (+ a PING probe), everything else on core 0' : 'NOT pinned'}), ` +
      `redis ${r.environment.redis}, node ${r.environment.node}, load avg ${r.environment.loadavg[0]} → ${r.environment.loadavgEnd[0]}`,
  );
  printChoice(r);

  console.log(
    `\n2./3. POST /v1/jobs — ${fmt.int(r.registration.nodes)} nodes over WebSocket (bench fixture: ASR zh/en/ja, NMT any_to_any ` +
      `zh/en/ja, TTS zh/en; max_concurrent_jobs ${fmt.int(r.setup.maxConcurrentJobs)}), ${fmt.int(o.jobRate)}/s open loop over ` +
      `${o.jobConnections} keep-alive connections, ${o.jobDurationS} s windows; mix: ${r.setup.jobKinds.join(' · ')}`,
  );
  const s = r.stormSearch;
  console.log(
    `storm: every node at once, ${fmt.int(r.stormRate)} heartbeats/s offered` +
      (s
        ? ` = the gateway's max sustained rate in this layout (bursts, jobs flowing: applied ${fmt.int(s.maxSustained)}/s; ` +
          `${s.steps.length} steps; ${s.stoppedBecause})`
        : ' (--storm-rate)') +
      `; during the storm window: applied ${fmt.int(r.stormStep.appliedRate)}/s, gateway p99 ${fmt.ms(r.stormStep.latencyMs.p99)}` +
      (r.stormStep.pass ? ', kept up' : `, DID NOT KEEP UP: ${r.stormStep.notes.join('; ')}`) +
      '\n',
  );
  printTable(
    [
      'window',
      'answered/s',
      '201',
      '503',
      'other',
      'not sent',
      'conflicts',
      'POST p50',
      'POST p99',
      'POST max',
      'server p50 / p99 ¹',
      'choice p50 / p99 µs ²',
      'hist p99 µs ³',
      'redis PING p50 / p99 ⁴',
    ],
    r.windows.map(latencyRow),
  );
  console.log(
    [
      `  POST: client side, scheduled send → response read (open loop: waiting for one of the ${o.jobConnections} sockets counts;`,
      '  not sent: due while 2 s of requests were already in flight)',
      '  ¹ sb_job_request_duration_seconds (inside the selector)   ² selection_us of the 201 answers (exact)',
      '  ³ sb_selection_duration_seconds p99 (bucket-interpolated: buckets 10/25/50/100/200/300/500 µs…)',
      "  ⁴ a PING every 10 ms from a probe process beside the selector: Redis as seen from the selector's core",
      '',
    ].join('\n'),
  );
  printTable(
    [
      'window',
      'hb applied/s',
      'deltas/s',
      'published/s ⁵',
      'selector',
      'job client',
      'gateway',
      'redis',
      'worker',
      'load gen',
      'core 0',
      'core 1',
      'other',
      'sel. GC ms',
      'sel. loop lag p99',
      'lag ms ⁶',
    ],
    r.windows.map(loadRow),
  );
  console.log(
    [
      '  CPU in % of one core. ⁵ nodes in published snapshot deltas/s (worker): upserts every selector replica applies',
      "  ⁶ pipeline lag: a change received (heartbeat or registration) → applied in the replica, p50 / p99 of the last 2,048 changes (GET /v1/snapshot at the window's end)",
    ].join('\n'),
  );
  printTable(
    [
      'window',
      'placed/s',
      'selector µs',
      'redis µs',
      'worker µs',
      'sum µs ⁷',
      'gateway µs',
      'redis cmds',
      'EVALSHA',
      'top commands',
    ],
    r.windows.map(perJobRow),
  );
  console.log(
    '  ⁷ CPU per placed job (a 201), selector + Redis + worker; Redis commands per placed job from INFO commandstats (all clients)',
  );
  for (const w of r.windows) {
    const notes = [
      `slowest POST per second (ms): ${w.client.maxMsBySecond.map((v) => Math.round(v)).join(' ')}`,
    ];
    if (w.client.transportErrors > 0)
      notes.push(`transport errors ${w.client.transportErrors}: ${w.client.firstTransportError}`);
    if (w.client.first503) notes.push(`first 503: ${w.client.first503}`);
    console.log(`  ${w.label}: ${notes.join('; ')}`);
  }

  const iso = isolationOf(r);
  console.log(
    `\nisolation, storm ÷ quiet (÷ quiet after): choice p99 ${fmt.ratio(iso.choiceHistogram)} (${fmt.ratio(iso.afterStorm.choiceHistogram)}) histogram, ` +
      `${fmt.ratio(iso.choiceExact)} (${fmt.ratio(iso.afterStorm.choiceExact)}) exact; ` +
      `POST p99 ${fmt.ratio(iso.endToEnd)} (${fmt.ratio(iso.afterStorm.endToEnd)}) client, ` +
      `${fmt.ratio(iso.server)} (${fmt.ratio(iso.afterStorm.server)}) server`,
  );
  if (r.profile) printProfile('selector', r.profile);
  console.log('\ngoals:');
  printTable(
    ['goal', 'target', 'measured', ''],
    r.goals.map((g) => [g.name, g.target, g.value, g.pass === null ? 'n/a' : g.pass ? 'PASS' : 'FAIL']),
  );
  for (const w of r.warnings) console.log(`warning: ${w}`);
}
