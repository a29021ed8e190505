/** The snapshot scenario's result record, its goals, and what it prints. */
import { printProfile, type ProfileSummary } from '../lib/cpu-profile.ts';
import type { Environment } from '../lib/environment.ts';
import type { BenchOptions } from '../lib/options.ts';
import { fmt, printTable } from '../lib/report.ts';
import type { Goal } from '../lib/scenario.ts';
import type { QueueActivity } from '../heartbeat/queue-events.ts';
import type { RegistrationSummary } from '../heartbeat/setup.ts';
import type { StepResult } from '../heartbeat/step.ts';
import type { ProbeResult } from './probe.ts';
import type { SettleResult, WorkerWindow } from './worker-window.ts';

export const GOALS = { stalenessP99Ms: 100, workerCpuPct: 25, workerCpuAtRate: 10_000 } as const;

export interface SnapshotResult {
  scenario: 'snapshot';
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
    nodes: number;
    shards: number;
    gatewayEnv: Record<string, string>;
    workerEnv: Record<string, string>;
    /** The worker's and gateway's effective settings that shape the figures (defaults included). */
    settings: Record<string, number>;
  };
  registration: RegistrationSummary;
  /** Registration done → every node indexed and published, nothing dirty. */
  settle: SettleResult;
  main: StepResult;
  worker: WorkerWindow;
  probe: ProbeResult;
  /** Jobs enqueued during the main phase (warm-up included). */
  queues: { snapshotFlush: QueueActivity };
  exits: Record<string, { code: number | null; signal: string | null } | null>;
  /** The worker's CPU profile (--profile), the whole run (registration included). */
  profile: ProfileSummary | null;
  goals: Goal[];
}

const ms = (x: number | null | undefined, overflow = false) => `${overflow ? '> ' : ''}${fmt.ms(x)}`;

export function evaluateGoals(r: SnapshotResult): Goal[] {
  const w = r.worker;
  const e2e = r.probe.endToEndMs;
  const cpu = w.cpuPct;
  // A probe that timed out is slower than any seen: with more than 1 % of them the p99 is unknown.
  const probeP99Known = e2e !== null && r.probe.timedOut <= 0.01 * r.probe.started;
  return [
    {
      name: 'staleness p99, worker histogram',
      target: `≤ ${GOALS.stalenessP99Ms} ms`,
      value: ms(w.stalenessMs.p99, w.stalenessMs.overflow),
      pass:
        w.stalenessMs.p99 === null
          ? null
          : !w.stalenessMs.overflow && w.stalenessMs.p99 <= GOALS.stalenessP99Ms,
    },
    {
      name: 'staleness p99, end-to-end probe',
      target: `≤ ${GOALS.stalenessP99Ms} ms`,
      value: e2e === null ? '–' : `${probeP99Known ? '' : '> '}${fmt.ms(e2e.p99)}`,
      pass: e2e === null ? null : probeP99Known && e2e.p99 <= GOALS.stalenessP99Ms,
    },
    {
      name: `worker CPU at ${fmt.int(r.main.appliedRate)} heartbeats/s`,
      target: `≤ ${GOALS.workerCpuPct}% at ${fmt.int(GOALS.workerCpuAtRate)}/s`,
      value: fmt.pct(cpu),
      // Below the goal's rate a low figure proves nothing; a high one fails anyway.
      pass:
        cpu === null
          ? null
          : cpu > GOALS.workerCpuPct
            ? false
            : r.main.offeredRate >= GOALS.workerCpuAtRate
              ? true
              : null,
    },
  ];
}

export function printSnapshotSummary(r: SnapshotResult): void {
  const o = r.options;
  const m = r.main;
  const w = r.worker;
  const p = r.probe;
  const cpu = m.cpu.processes;
  const steal = Math.max(0, ...Object.values(m.cpu.cores).map((c) => c.stealPct));
  console.log(
    `\nsnapshot — ${fmt.int(o.nodes)} nodes, ${r.setup.shards} shards, ${r.environment.cpus} cores ` +
      `(${r.environment.pinning ? 'pinned' : 'NOT pinned'}), redis ${r.environment.redis}, node ${r.environment.node}, ` +
      `load avg ${r.environment.loadavg[0]} → ${r.environment.loadavgEnd[0]}`,
  );
  console.log(
    `settings: ${Object.entries(r.setup.settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  console.log(
    `registration: ${fmt.int(r.registration.nodes)} nodes in ${r.registration.seconds.toFixed(1)} s; ` +
      `worker settled ${r.settle.seconds.toFixed(1)} s later (` +
      `${fmt.int(r.settle.checkpointEntries)} checkpoint entries)\n`,
  );
  console.log(
    `main phase (${o.durationS} s measured): offered ${fmt.int(m.offeredRate)}/s, applied ${fmt.int(m.appliedRate)}/s, ` +
      `gateway p99 ${fmt.ms(m.latencyMs.p99)} — ${m.pass ? 'kept up' : `DID NOT KEEP UP: ${m.notes.join('; ')}`}`,
  );
  console.log(
    `  CPU (% of one core): worker ${fmt.pct(cpu['worker'])}, gateway ${fmt.pct(cpu['gateway'])}, ` +
      `redis ${fmt.pct(cpu['redis'])}, load gen ${fmt.pct(cpu['loadgen'])}, orchestrator+probe ${fmt.pct(cpu['orchestrator'])}, ` +
      `other ${fmt.pct(m.cpu.unaccountedPct)}, steal ≤ ${fmt.pct(steal)}`,
  );
  console.log('');
  const flushes = Object.entries(w.flushes)
    .map(([k, v]) => `${k} ${fmt.int(v)}`)
    .join(', ');
  const gcMs = Object.values(w.gc).reduce((sum, g) => sum + g.ms, 0);
  printTable(
    [`worker, main phase (${w.windowS.toFixed(1)} s)`, 'measured'],
    [
      [
        'coalescing ¹',
        `${fmt.int(w.deltasPerSec)} deltas/s ÷ ${fmt.int(w.heartbeatsPerSec)} heartbeats/s = ${w.coalescing?.toFixed(4) ?? '–'}`,
      ],
      ['nodes per delta ²', w.nodesPerDelta?.toFixed(1) ?? '–'],
      [
        'published nodes ³',
        `${fmt.int(w.publishedNodesPerSec)}/s = ${fmt.pct(w.publishedPerHeartbeat === null ? null : w.publishedPerHeartbeat * 100)} of heartbeats`,
      ],
      ['flushes', flushes || '–'],
      ['flush duration ⁴', `p50 ${fmt.ms(w.flushMs.p50)}, p99 ${ms(w.flushMs.p99, w.flushMs.overflow)}`],
      [
        'flush cost ⁵',
        `${fmt.int(w.cpuUsPerPublishedNode)} µs CPU per published node, ${fmt.int(w.cpuUsPerDelta)} µs per delta`,
      ],
      ['worker CPU', `${fmt.pct(w.cpuPct)} of one core`],
      [
        'staleness, worker ⁶',
        `p50 ${fmt.ms(w.stalenessMs.p50)}, p99 ${ms(w.stalenessMs.p99, w.stalenessMs.overflow)}`,
      ],
      [
        'staleness, probe ⁷',
        p.endToEndMs
          ? `p50 ${fmt.ms(p.endToEndMs.p50)}, p99 ${fmt.ms(p.endToEndMs.p99)}, max ${fmt.ms(p.endToEndMs.max)} ` +
            `(${p.seen} of ${p.started} seen, ${p.timedOut} timed out)`
          : '–',
      ],
      ...(
        [
          ['  ingress ⁸', p.ingressMs],
          ['  server', p.serverMs],
          ['  egress', p.egressMs],
        ] as const
      ).map(([label, x]) => [label, x ? `p50 ${fmt.ms(x.p50, 0)}, p99 ${fmt.ms(x.p99, 0)}` : '–']),
      ['worker GC, loop lag', `${fmt.int(gcMs)} ms GC, event-loop lag p99 ${fmt.ms(w.eventLoopLagMs?.p99)}`],
    ],
  );
  console.log(
    [
      "  ¹ new shard versions (Redis `ver` keys) ÷ the gateway's applied heartbeats",
      '  ² sb_snapshot_delta_nodes sum ÷ count   ³ sb_snapshot_published_nodes_total ÷ applied heartbeats',
      '  ⁴ sb_snapshot_flush_duration_seconds, every flush   ⁵ worker CPU time (/proc) ÷ published nodes, ÷ deltas',
      '  ⁶ sb_snapshot_lag_seconds (a change received: the node marked dirty → entry built), bucket-interpolated',
      `  ⁷ client side: probe sent (incl. the IPC hop to the load generator) → HGET sees it; polled every ` +
        `${p.options.pollMs} ms, achieved ${fmt.ms(p.meanPollGapMs)} between polls`,
      "  ⁸ wall clock, ms: probe sent → the entry's hb (gateway received it) → its at (flush built it) → seen",
    ].join('\n'),
  );
  const flushQ = r.queues.snapshotFlush;
  console.log(
    `\njobs enqueued in the main phase (warm-up included): snapshot-flush ${fmt.int(flushQ.addCalls)} add calls (${flushQ.eventsTrimmed ? 'events stream trimmed, at least ' : ''}` +
      `${fmt.int(flushQ.added)} added, ${fmt.int(flushQ.deduplicated)} deduplicated)`,
  );
  if (p.failed > 0) console.log(`probe failures: ${p.failed}, first: ${p.firstFailure}`);
  if (r.profile) printProfile('worker', r.profile);
  console.log('\ngoals:');
  printTable(
    ['goal', 'target', 'measured', ''],
    r.goals.map((g) => [g.name, g.target, g.value, g.pass === null ? 'n/a' : g.pass ? 'PASS' : 'FAIL']),
  );
  for (const warning of r.warnings) console.log(`warning: ${warning}`);
}
