import { parseArgs } from 'node:util';
import { createLogger } from '../shared/logger.ts';
import { SERVICE_TYPE_PATTERN } from '../shared/protocol/node-messages.ts';
import { simulatedRegistration } from './fleet-profiles.ts';
import { LinguaNodeAgent } from './lingua-agent.ts';
import { NodeAgent } from './node-agent.ts';
import { simulatedHandler } from './simulated-job.ts';

const HELP = `Switchboard node agent with a simulated job handler.

Usage:
  node --import tsx agent/cli.ts --gateway ws://HOST:8080/ws/node[,ws://HOST2:8080/ws/node] --token TOKEN [options]

Options:
  --gateway URLS      gateway WebSocket URL(s), comma-separated; each reconnect tries the next
  --token TOKEN       cluster join token (default: $SB_JOIN_TOKEN; omit when the gateway has SB_AUTH=off)
  --node-id ID        node id (default: the gateway generates node-<8 hex>)
  --langs LIST        languages, any-to-any among them (default zh,en,ja)
  --services LIST     service types to report ready (default asr,nmt,tts; also tone, semantic, any other)
  --lingua            speak the lingua node client's dialect instead (TinoTau/lingua_1): register with
                      node_id null (or --node-id), never ack, heartbeat before re-registering,
                      asr_partial for streaming jobs; pairs are --langs × --langs
  --bundle B          with --lingua: the service bundle, core (asr,nmt,tts,semantic) or full
                      (also phonetic, punctuation, tone; default core)
  --max-jobs N        max_concurrent_jobs (default 4)
  --job-ms MS         mean simulated job duration (default 2000; lognormal, see --job-sigma)
  --job-sigma S       lognormal shape of job durations (default 0.5; 0 = fixed)
  --fail-rate P       share of simulated jobs that fail, 0..1 (default 0)
  --heartbeat-ms MS   heartbeat interval (default: what the gateway says in its ack)
  --no-gpu            report no GPU (the gateway must run with SB_REQUIRE_GPU=false)
  --log-level LEVEL   pino level (default info)
  -h, --help          this text

Logs are JSON lines on stdout. SIGTERM / Ctrl-C: stop taking jobs, let running ones finish
(up to 30 s), close the socket with 1000 and exit 0.`;

function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function number(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got ${text}`);
  return n;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      gateway: { type: 'string' },
      token: { type: 'string' },
      'node-id': { type: 'string' },
      langs: { type: 'string', default: 'zh,en,ja' },
      services: { type: 'string', default: 'asr,nmt,tts' },
      'max-jobs': { type: 'string' },
      lingua: { type: 'boolean', default: false },
      bundle: { type: 'string', default: 'core' },
      'job-ms': { type: 'string' },
      'job-sigma': { type: 'string' },
      'fail-rate': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'no-gpu': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
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
  const langs = list(values.langs);
  if (langs.length === 0) throw new Error('--langs: give at least one language');

  const log = createLogger('node-agent', values['log-level']);
  const job = {
    meanMs: number('job-ms', values['job-ms'], 2000),
    sigma: number('job-sigma', values['job-sigma'], 0.5),
    failureRate: number('fail-rate', values['fail-rate'], 0),
  };
  const heartbeatMs = values['heartbeat-ms'];
  const onSignals = (stop: () => Promise<void>, running: () => number) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals > 1) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      log.info({ signal, running: running() }, 'stopping');
      void stop();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  };
  if (values.lingua) {
    if (values.bundle !== 'core' && values.bundle !== 'full')
      throw new Error(`--bundle: expected core or full, got ${values.bundle}`);
    const lingua = new LinguaNodeAgent({
      gatewayUrls: list(values.gateway),
      token: values.token ?? process.env['SB_JOIN_TOKEN'],
      nodeId: values['node-id'] ?? null,
      shape: {
        bundle: values.bundle,
        languages: langs,
        tts: langs,
        gpu: values['no-gpu'] ? null : { name: 'Simulated GPU', memory_gb: 24 },
        cpuCores: 16,
        memoryGb: 64,
      },
      heartbeatIntervalMs: heartbeatMs === undefined ? undefined : number('heartbeat-ms', heartbeatMs, 0),
      job,
      log,
    });
    onSignals(
      () => lingua.stop(30_000).then(() => process.exit(0)),
      () => lingua.runningJobs,
    );
    lingua.start();
    return;
  }
  const registration = simulatedRegistration({
    nodeId: '',
    profile: { name: 'cli', asr: langs, tts: langs, nmt: { rule: 'any_to_any', languages: langs } },
    services: services,
    gpu: values['no-gpu'] ? null : { name: 'Simulated GPU', memory_gb: 24 },
    cpuCores: 16,
    memoryGb: 64,
    maxJobs: Math.max(1, Math.floor(number('max-jobs', values['max-jobs'], 4))),
  });
  registration.node_id = values['node-id'] ?? null;

  const agent = new NodeAgent({
    gatewayUrls: list(values.gateway),
    token: values.token ?? process.env['SB_JOIN_TOKEN'],
    registration,
    heartbeatIntervalMs: heartbeatMs === undefined ? undefined : number('heartbeat-ms', heartbeatMs, 0),
    handler: simulatedHandler(job),
    log,
  });
  agent.on('stopped', () => process.exit(0));
  onSignals(
    () => agent.stop(),
    () => agent.runningJobs,
  );
  agent.start();
}

try {
  main();
} catch (err) {
  console.error(`error: ${(err as Error).message}`);
  process.exit(2);
}
