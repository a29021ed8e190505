/**
 * Benchmark options: CLI flags win over environment variables, which win over the `--quick`
 * preset, which wins over the defaults. Every option is listed once, here, with its env name,
 * default and quick value; `--help` prints this table.
 */

export interface BenchOptions {
  /** Scenario names given on the command line; empty = all. */
  scenarios: string[];
  quick: boolean;
  help: boolean;
  /** Simulated nodes (one WebSocket each). */
  nodes: number;
  /** Offered heartbeats/s, aggregate over all nodes, in the main measured phase. */
  rate: number;
  /** Measured window of the main phase, seconds. */
  durationS: number;
  /** Load before the measured window starts, seconds. */
  warmupS: number;
  /** Measured window of the raw EVALSHA baseline, seconds (after 1 s of warm-up). */
  baselineS: number;
  /** EVALSHA calls in flight in the baseline. */
  baselineWindow: number;
  /** Run the max-throughput search (stepped open-loop rates). */
  ramp: boolean;
  /** heartbeat: also measure max sustained with 1 and `processes` gateway processes (SB_GATEWAY_PROCESSES). */
  scale: boolean;
  /** heartbeat: gateway processes of the scaling comparison. */
  processes: number;
  /** Measured window of one ramp step, seconds (after `rampSettleS`). */
  rampStepS: number;
  rampSettleS: number;
  /** The ramp never offers more than this. */
  maxRate: number;
  /** Start the service under test (heartbeat: gateway; snapshot: worker; selector: selector) with `--cpu-prof`. */
  profile: boolean;
  /** Extra `node` arguments for the gateway process (space-separated), e.g. GC tuning. */
  gatewayNodeArgs: string;
  /** selector: synthetic nodes in the in-process choice index. */
  choiceNodes: number;
  /** selector: timed select() calls per request kind (after as many warm-up calls ÷ 4). */
  choiceCalls: number;
  /** selector: nodes registered over WebSocket for the POST /v1/jobs phases. */
  jobNodes: number;
  /** selector: offered POST /v1/jobs per second (open loop). */
  jobRate: number;
  /** selector: measured seconds of each jobs window (quiet, storm, quiet again). */
  jobDurationS: number;
  /** selector: keep-alive connections of the job client. */
  jobConnections: number;
  /** selector: heartbeat storm rate; 0 = search the gateway's max sustained rate in this layout. */
  stormRate: number;
  /** scale: simulated nodes (HTTP, from two fleet processes). */
  scaleNodes: number;
  /** scale: heartbeats/s in the heartbeat phase; 0 = the fleet's interval (nodes ÷ 15 s). */
  scaleHeartbeatRate: number;
  /** scale: measured seconds of the heartbeat phase (dry-run jobs for choice p99 meanwhile). */
  scaleDurationS: number;
  /** scale: `standalone`, `cluster` (3 masters) or `both`. */
  scaleRedis: string;
}

interface Spec {
  key: keyof BenchOptions;
  flag: string;
  env: string;
  kind: 'int' | 'num' | 'bool' | 'str';
  def: number | boolean | string;
  quick?: number | boolean | string;
  help: string;
}

const SPECS: Spec[] = [
  {
    key: 'nodes',
    flag: 'nodes',
    env: 'BENCH_NODES',
    kind: 'int',
    def: 2000,
    quick: 200,
    help: 'simulated nodes',
  },
  {
    key: 'rate',
    flag: 'rate',
    env: 'BENCH_RATE',
    kind: 'num',
    def: 10000,
    quick: 2000,
    help: 'offered heartbeats/s (aggregate)',
  },
  {
    key: 'durationS',
    flag: 'duration',
    env: 'BENCH_DURATION_S',
    kind: 'num',
    def: 20,
    quick: 5,
    help: 'measured seconds of the main phase',
  },
  {
    key: 'warmupS',
    flag: 'warmup',
    env: 'BENCH_WARMUP_S',
    kind: 'num',
    def: 5,
    quick: 2,
    help: 'warm-up seconds',
  },
  {
    key: 'baselineS',
    flag: 'baseline-duration',
    env: 'BENCH_BASELINE_S',
    kind: 'num',
    def: 5,
    quick: 3,
    help: 'measured seconds of the raw EVALSHA baseline',
  },
  {
    key: 'baselineWindow',
    flag: 'baseline-window',
    env: 'BENCH_BASELINE_WINDOW',
    kind: 'int',
    def: 256,
    help: 'EVALSHA calls in flight in the baseline',
  },
  {
    key: 'ramp',
    flag: 'ramp',
    env: 'BENCH_RAMP',
    kind: 'bool',
    def: true,
    help: 'search the max sustained rate',
  },
  {
    key: 'scale',
    flag: 'scale',
    env: 'BENCH_SCALE',
    kind: 'bool',
    def: true,
    quick: false,
    help: 'heartbeat: max sustained with 1 and --processes gateway processes on both cores',
  },
  {
    key: 'processes',
    flag: 'processes',
    env: 'BENCH_PROCESSES',
    kind: 'int',
    def: 2,
    help: 'heartbeat --scale: SB_GATEWAY_PROCESSES of the second gateway',
  },
  {
    key: 'rampStepS',
    flag: 'ramp-step',
    env: 'BENCH_RAMP_STEP_S',
    kind: 'num',
    def: 5,
    quick: 3,
    help: 'measured seconds per ramp step',
  },
  {
    key: 'rampSettleS',
    flag: 'ramp-settle',
    env: 'BENCH_RAMP_SETTLE_S',
    kind: 'num',
    def: 2,
    quick: 1,
    help: 'settle seconds before each ramp step',
  },
  {
    key: 'maxRate',
    flag: 'max-rate',
    env: 'BENCH_MAX_RATE',
    kind: 'num',
    def: 100000,
    help: 'highest rate the ramp offers',
  },
  {
    key: 'profile',
    flag: 'profile',
    env: 'BENCH_PROFILE',
    kind: 'bool',
    def: false,
    help: 'run the gateway (heartbeat) / worker (snapshot) / selector (selector) with --cpu-prof',
  },
  {
    key: 'gatewayNodeArgs',
    flag: 'gateway-node-args',
    env: 'BENCH_GATEWAY_NODE_ARGS',
    kind: 'str',
    def: '',
    help: 'extra node arguments for the gateway (e.g. "--max-semi-space-size=32")',
  },
  {
    key: 'choiceNodes',
    flag: 'choice-nodes',
    env: 'BENCH_CHOICE_NODES',
    kind: 'int',
    def: 10000,
    help: 'selector: synthetic nodes of the in-process choice index',
  },
  {
    key: 'choiceCalls',
    flag: 'choice-calls',
    env: 'BENCH_CHOICE_CALLS',
    kind: 'int',
    def: 3000,
    quick: 500,
    help: 'selector: timed select() calls per request kind',
  },
  {
    key: 'jobNodes',
    flag: 'job-nodes',
    env: 'BENCH_JOB_NODES',
    kind: 'int',
    def: 1000,
    quick: 200,
    help: 'selector: nodes registered for the POST /v1/jobs phases',
  },
  {
    key: 'jobRate',
    flag: 'job-rate',
    env: 'BENCH_JOB_RATE',
    kind: 'num',
    def: 1000,
    help: 'selector: offered POST /v1/jobs per second',
  },
  {
    key: 'jobDurationS',
    flag: 'job-duration',
    env: 'BENCH_JOB_DURATION_S',
    kind: 'num',
    def: 15,
    quick: 5,
    help: 'selector: measured seconds of each jobs window',
  },
  {
    key: 'jobConnections',
    flag: 'job-connections',
    env: 'BENCH_JOB_CONNECTIONS',
    kind: 'int',
    def: 64,
    help: 'selector: keep-alive connections of the job client',
  },
  {
    key: 'stormRate',
    flag: 'storm-rate',
    env: 'BENCH_STORM_RATE',
    kind: 'num',
    def: 0,
    help: 'selector: heartbeat storm rate (default 0: search the max sustained)',
  },
  {
    key: 'scaleNodes',
    flag: 'scale-nodes',
    env: 'BENCH_SCALE_NODES',
    kind: 'int',
    def: 100_000,
    quick: 10_000,
    help: 'scale: simulated nodes over HTTP',
  },
  {
    key: 'scaleHeartbeatRate',
    flag: 'scale-rate',
    env: 'BENCH_SCALE_RATE',
    kind: 'num',
    def: 0,
    help: 'scale: heartbeats/s; 0 = nodes ÷ 15 s (the fleet interval)',
  },
  {
    key: 'scaleDurationS',
    flag: 'scale-duration',
    env: 'BENCH_SCALE_DURATION_S',
    kind: 'num',
    def: 30,
    quick: 15,
    help: 'scale: measured seconds of the heartbeat phase',
  },
  {
    key: 'scaleRedis',
    flag: 'scale-redis',
    env: 'BENCH_SCALE_REDIS',
    kind: 'str',
    def: 'both',
    help: 'scale: standalone, cluster or both',
  },
];

export class OptionsError extends Error {
  override readonly name = 'OptionsError';
}

function parseBool(raw: string, source: string): boolean {
  if (/^(1|true|on|yes)$/i.test(raw)) return true;
  if (/^(0|false|off|no)$/i.test(raw)) return false;
  throw new OptionsError(`${source}: expected a boolean, got ${JSON.stringify(raw)}`);
}

function parseValue(spec: Spec, raw: string, source: string): number | boolean | string {
  if (spec.kind === 'bool') return parseBool(raw, source);
  if (spec.kind === 'str') return raw;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (spec.kind === 'int' && !Number.isInteger(value))) {
    throw new OptionsError(
      `${source}: expected a positive ${spec.kind === 'int' ? 'integer' : 'number'}, got ${raw}`,
    );
  }
  return value;
}

/** Parses `argv` (after the script name) and `env`. Throws OptionsError listing what is wrong. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const fromFlags = new Map<Spec, number | boolean | string>();
  const scenarios: string[] = [];
  let quick = env['BENCH_QUICK'] ? parseBool(env['BENCH_QUICK'], 'BENCH_QUICK') : false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      scenarios.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (name === 'quick') quick = inline === undefined || parseBool(inline, arg);
    else if (name === 'help') help = true;
    else if (name.startsWith('no-') && SPECS.some((s) => s.flag === name.slice(3) && s.kind === 'bool')) {
      fromFlags.set(
        SPECS.find((s) => s.flag === name.slice(3))!,
        false,
      );
    } else {
      const spec = SPECS.find((s) => s.flag === name);
      if (!spec) throw new OptionsError(`unknown option --${name} (see --help)`);
      let raw = inline;
      if (raw === undefined && spec.kind === 'bool') raw = 'true';
      if (raw === undefined) {
        raw = argv[++i];
        if (raw === undefined) throw new OptionsError(`--${name} needs a value`);
      }
      fromFlags.set(spec, parseValue(spec, raw, `--${name}`));
    }
  }

  const options: Record<string, unknown> = { scenarios, quick, help };
  for (const spec of SPECS) {
    const envRaw = env[spec.env];
    options[spec.key] =
      fromFlags.get(spec) ??
      (envRaw !== undefined && envRaw !== '' ? parseValue(spec, envRaw, spec.env) : undefined) ??
      (quick && spec.quick !== undefined ? spec.quick : spec.def);
  }
  return options as unknown as BenchOptions;
}

export function optionsHelp(scenarios: readonly { name: string; description: string }[]): string {
  const lines = [
    'usage: npm run bench -- [scenario ...] [--quick] [--option value ...]',
    '',
    'scenarios (default: all):',
    ...scenarios.map((s) => `  ${s.name.padEnd(22)} ${s.description}`),
    '',
    'options (flag / env / default / --quick):',
    `  ${'--quick'.padEnd(22)} ${'BENCH_QUICK'.padEnd(22)} smoke-test preset`,
    ...SPECS.map(
      (s) =>
        `  ${`--${s.flag}`.padEnd(22)} ${s.env.padEnd(22)} ${String(s.def).padEnd(7)} ${String(s.quick ?? '').padEnd(6)} ${s.help}`,
    ),
    '',
    'Boolean options also take --no-<flag>. Results: bench/results/<scenario>-<timestamp>.json',
  ];
  return lines.join('\n');
}
