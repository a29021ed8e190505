import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { SERVICE_TYPE_PATTERN } from '../shared/protocol/node-messages.ts';
import { LANGUAGE_PROFILES, parseProfileMix } from './fleet-profiles.ts';
import { FleetSimulator } from './fleet-simulator.ts';

const HELP = `Switchboard fleet simulator: N simulated nodes (real NodeAgents, one socket each) in one process.

Usage:
  node --import tsx agent/fleet-cli.ts --gateway ws://HOST:8080/ws/node[,…] --token TOKEN [options]

Options:
  --gateway URLS      gateway WebSocket URL(s), comma-separated; each reconnect tries the next
  --token TOKEN       cluster join token (default: $SB_JOIN_TOKEN; omit when the gateway has SB_AUTH=off)
  --nodes N           number of nodes (default 200)
  --prefix P          node ids P-0000, P-0001, … (default sim)
  --profiles MIX      language profiles with weights (default zh-en:3,en-ja-zh:2,en-es-fr-de:2,any-to-en:1)
                      built in: ${Object.keys(LANGUAGE_PROFILES).join(', ')}; or a custom
                      any-to-any set such as en+ko:2
  --services LIST     service types every node runs (default asr,nmt,tts; also tone, semantic, any other)
  --lingua-share S    share of the nodes, 0..1, speaking the lingua node client's dialect (default 0;
                      no acks, generated node ids, the fleet's core/full service bundles)
  --max-jobs N        max_concurrent_jobs per node (default 4)
  --job-ms MS         mean simulated job duration (default 2000)
  --job-sigma S       lognormal shape of job durations (default 0.5; 0 = fixed)
  --fail-rate P       share of jobs that fail, 0..1 (default 0)
  --heartbeat-ms MS   heartbeat interval (default: what the gateway says in its ack)
  --ramp-ms MS        spread the connects over this long (default 10 ms per node)
  --volatility PP     load random-walk noise, percentage points per heartbeat (default 3)
  --summary-ms MS     print a summary line this often (default 5000; 0 = never)
  --seed N            reproducible fleet (profiles, hardware, load, durations)
  --no-gpu            nodes without GPU (the gateway must run with SB_REQUIRE_GPU=false)
  --log-level LEVEL   per-node logs on stderr (default warn)
  -h, --help          this text

Summary lines go to stdout. SIGTERM / Ctrl-C: every node stops taking jobs, lets running ones
finish (up to 5 s), closes with 1000; then exit 0 (a second signal exits at once).`;

function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got ${text}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      gateway: { type: 'string' },
      token: { type: 'string' },
      nodes: { type: 'string', default: '200' },
      prefix: { type: 'string', default: 'sim' },
      profiles: { type: 'string' },
      services: { type: 'string', default: 'asr,nmt,tts' },
      'max-jobs': { type: 'string' },
      'lingua-share': { type: 'string' },
      'job-ms': { type: 'string' },
      'job-sigma': { type: 'string' },
      'fail-rate': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'ramp-ms': { type: 'string' },
      volatility: { type: 'string' },
      'summary-ms': { type: 'string' },
      seed: { type: 'string' },
      'no-gpu': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!values.gateway) throw new Error('--gateway is required (see --help)');
  const services = list(values.services);
  const bad = services.filter((s) => !SERVICE_TYPE_PATTERN.test(s));
  if (bad.length) throw new Error(`--services: not a service type: ${bad.join(', ')} (expected [a-z0-9_.-])`);
  const linguaShare = number('lingua-share', values['lingua-share']);
  if (linguaShare !== undefined && linguaShare > 1)
    throw new Error(`--lingua-share: expected 0..1, got ${values['lingua-share']}`);

  const log = pino(
    { level: values['log-level'], base: { service: 'fleet' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination(2),
  );
  const fleet = new FleetSimulator({
    gatewayUrls: list(values.gateway),
    token: values.token ?? process.env['SB_JOIN_TOKEN'],
    nodes: Math.floor(number('nodes', values.nodes) ?? 200),
    idPrefix: values.prefix,
    profiles: values.profiles ? parseProfileMix(values.profiles) : undefined,
    services: services,
    gpu: !values['no-gpu'],
    maxJobs: number('max-jobs', values['max-jobs']),
    linguaShare,
    job: {
      meanMs: number('job-ms', values['job-ms']),
      sigma: number('job-sigma', values['job-sigma']),
      failureRate: number('fail-rate', values['fail-rate']),
    },
    heartbeatIntervalMs: number('heartbeat-ms', values['heartbeat-ms']),
    rampUpMs: number('ramp-ms', values['ramp-ms']),
    loadVolatility: number('volatility', values.volatility),
    summaryIntervalMs: number('summary-ms', values['summary-ms']),
    seed: number('seed', values.seed),
    log,
  });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(1);
    console.log(`${signal}: stopping ${fleet.nodes.length} nodes…`);
    void fleet.stop().then(() => {
      console.log(FleetSimulator.format(fleet.summary()));
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await fleet.start();
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(2);
});
