/**
 * `npm run bench -- [scenario ...] [options]`: runs the selected benchmark scenarios (default:
 * all) one after another, each with its own Redis and services, each writing
 * bench/results/<scenario>-<timestamp>.json. Exit code 1 on an error, 2 on bad options;
 * goals missed are reported, not turned into a failing exit code (figures from a shared,
 * noisy machine are evidence, not a gate).
 */
import { optionsHelp, OptionsError, parseOptions } from './lib/options.ts';
import { Supervisor } from './lib/processes.ts';
import type { ScenarioEntry, ScenarioOutcome } from './lib/scenario.ts';

const SCENARIOS: ScenarioEntry[] = [
  {
    name: 'heartbeat',
    description: 'heartbeats/s and latency of one gateway over WebSocket vs raw EVALSHA',
    load: () => import('./heartbeat.bench.ts'),
  },
  {
    name: 'snapshot',
    description: 'one worker beside the gateway at the main rate: coalescing, flush cost, staleness',
    load: () => import('./snapshot.bench.ts'),
  },
  {
    name: 'selector',
    description: 'choice at 10k nodes in process, POST /v1/jobs end to end, isolation from a heartbeat storm',
    load: () => import('./selector.bench.ts'),
  },
  {
    name: 'jobs',
    description: 'end-to-end job latency (submit → job_assign, → result) with a fleet of node agents',
    load: () => import('./jobs.bench.ts'),
  },
  {
    name: 'scale',
    description:
      '100,000 nodes over HTTP (10,000 quick): memory per node, bootstrap, storm, on standalone and Cluster',
    load: () => import('./scale.bench.ts'),
  },
];

const supervisor = new Supervisor();

async function main(): Promise<number> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof OptionsError)) throw err;
    console.error(`${err.message}\n\n${optionsHelp(SCENARIOS)}`);
    return 2;
  }
  if (options.help) {
    console.log(optionsHelp(SCENARIOS));
    return 0;
  }
  const unknown = options.scenarios.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(
      `unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`,
    );
    return 2;
  }
  const selected = options.scenarios.length
    ? SCENARIOS.filter((s) => options.scenarios.includes(s.name))
    : SCENARIOS;

  const outcomes: { name: string; outcome: ScenarioOutcome }[] = [];
  for (const scenario of selected) {
    console.log(`\n=== ${scenario.name}${options.quick ? ' (quick)' : ''} ===`);
    try {
      const { run } = await scenario.load();
      outcomes.push({ name: scenario.name, outcome: await run({ options, supervisor }) });
    } finally {
      await supervisor.shutdown();
    }
  }
  if (outcomes.length > 1) {
    console.log('\n=== summary ===');
    for (const { name, outcome } of outcomes) {
      const missed = outcome.goals.filter((g) => g.pass === false).map((g) => g.name);
      console.log(
        `${name}: ${missed.length ? `goals missed: ${missed.join('; ')}` : 'all goals met'} — ${outcome.resultFile}`,
      );
    }
  }
  return 0;
}

supervisor.installSignalHandlers();
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Interrupted: what failed is the consequence; the signal handler cleans up and exits.
    if (supervisor.interrupted) return;
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
