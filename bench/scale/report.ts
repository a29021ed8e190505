/**
 * What one scale run measured (bench/scale.bench.ts), its table and its goals.
 */
import { fmt, printTable, progress } from '../lib/report.ts';
import type { Goal } from '../lib/scenario.ts';
import type { MemoryBreakdown } from './memory.ts';
import type { RedisKind } from './deployment.ts';

export interface StormResult {
  nodes: number;
  registerS: number;
  allReadyS: number | null;
  lost: number;
  statuses: Record<string, number>;
  /** WebSocket: error frames after the ack (the heartbeat's answer), by code. */
  afterAck?: Record<string, number>;
  /** Attempts shed and tried again (HTTP: 429/503 statuses; WebSocket: how each attempt ended). */
  shed?: Record<string, number>;
  /** WebSocket: error frames before the ack, by code (ignored, as the lingua client does). */
  errorsBeforeAck?: Record<string, number>;
  /** CPU µs per storming node from the storm's start until all ready (or the wait ended) */
  cpuUsPerNode?: { gateway: number | null; redis: number | null };
}

export interface ScaleRun {
  redis: RedisKind;
  nodes: number;
  registration: {
    seconds: number;
    perSec: number;
    statuses: Record<string, number>;
    publishedAfterS: number;
    /** CPU µs per registered node (register + first heartbeat) over the registration phase */
    cpuUsPerNode: { gateway: number | null; worker: number | null; redis: number | null };
  };
  memory: MemoryBreakdown;
  selector: { readyS: number; rssBytes: number | null; replicaNodes: number };
  heartbeats: {
    offeredPerSec: number;
    achievedPerSec: number;
    statuses: Record<string, number>;
    dropped: number;
    latencyMs: { p50: number; p99: number } | null;
    workerCpuPct: number | null;
    redisCpuPct: number | null;
    gatewayCpuPct: number | null;
    /** the two fleet processes together */
    fleetCpuPct: number | null;
    /** busy CPU outside the benchmark's processes (other tenants), % of a core */
    otherCpuPct: number | null;
    deltasPerSec: number;
    publishedNodesPerSec: number;
    ticks: number;
    tickMs: { mean: number | null; max: number | null };
    recountedPerTick: number | null;
    choice: { jobs: number; p50Ms: number | null; p99Ms: number | null; candidates: number | null };
  };
  /** over HTTP (the fleet processes, 128 in flight) */
  storm: StormResult;
  /** over WebSocket: the same nodes again, every socket opened at once */
  wsStorm: StormResult;
}

const stormCpu = (st: StormResult): string =>
  st.cpuUsPerNode
    ? `${fmt.int(st.cpuUsPerNode.gateway ?? NaN)} · ${fmt.int(st.cpuUsPerNode.redis ?? NaN)}`
    : '—';

export function printScale(runs: ScaleRun[]): void {
  const col = (f: (r: ScaleRun) => string) => runs.map(f);
  printTable(
    ['figure', ...runs.map((r) => `${r.redis} (${fmt.int(r.nodes)})`)],
    [
      ['registration, nodes/s (register + heartbeat, HTTP)', ...col((r) => fmt.int(r.registration.perSec))],
      [
        'registration CPU per node, µs (gateway · worker · Redis)',
        ...col((r) => {
          const c = r.registration.cpuUsPerNode;
          return [c.gateway, c.worker, c.redis].map((v) => (v === null ? '—' : fmt.int(v))).join(' · ');
        }),
      ],
      ['all indexed + published after, s', ...col((r) => r.registration.publishedAfterS.toFixed(1))],
      ['Redis memory per node, B', ...col((r) => fmt.int(r.memory.perNodeBytes))],
      ['selector ready after spawn, s', ...col((r) => r.selector.readyS.toFixed(2))],
      ['selector RSS, MiB', ...col((r) => fmt.int((r.selector.rssBytes ?? 0) / 2 ** 20))],
      [
        'heartbeats/s achieved (offered)',
        ...col((r) => `${fmt.int(r.heartbeats.achievedPerSec)} (${fmt.int(r.heartbeats.offeredPerSec)})`),
      ],
      ['heartbeat HTTP p99, ms', ...col((r) => r.heartbeats.latencyMs?.p99.toFixed(1) ?? '—')],
      ['gateway CPU, % of a core', ...col((r) => fmt.pct(r.heartbeats.gatewayCpuPct))],
      ['worker CPU, % of a core', ...col((r) => fmt.pct(r.heartbeats.workerCpuPct))],
      ['redis CPU, % of a core', ...col((r) => fmt.pct(r.heartbeats.redisCpuPct))],
      [
        'fleets · other (outside the bench) CPU, % of a core',
        ...col((r) => `${fmt.pct(r.heartbeats.fleetCpuPct)} · ${fmt.pct(r.heartbeats.otherCpuPct)}`),
      ],
      [
        'snapshot deltas/s · published nodes/s',
        ...col(
          (r) => `${r.heartbeats.deltasPerSec.toFixed(0)} · ${r.heartbeats.publishedNodesPerSec.toFixed(0)}`,
        ),
      ],
      [
        'liveness tick mean / max, ms',
        ...col(
          (r) =>
            `${r.heartbeats.tickMs.mean?.toFixed(1) ?? '—'} / ${r.heartbeats.tickMs.max?.toFixed(0) ?? '—'}`,
        ),
      ],
      ['nodes recounted per tick', ...col((r) => fmt.int(r.heartbeats.recountedPerTick ?? NaN))],
      [
        'choice p99, ms (candidates)',
        ...col(
          (r) =>
            `${r.heartbeats.choice.p99Ms?.toFixed(2) ?? '—'} (${fmt.int(r.heartbeats.choice.candidates ?? NaN)})`,
        ),
      ],
      [
        'storm: nodes, re-registered in s',
        ...col((r) => `${fmt.int(r.storm.nodes)}, ${r.storm.registerS.toFixed(1)}`),
      ],
      [
        'storm: all ready after, s (lost)',
        ...col((r) => `${r.storm.allReadyS?.toFixed(1) ?? '—'} (${r.storm.lost})`),
      ],
      [
        'WebSocket storm: nodes, all acked in s',
        ...col((r) => `${fmt.int(r.wsStorm.nodes)}, ${r.wsStorm.registerS.toFixed(1)}`),
      ],
      [
        'WebSocket storm: all ready after, s (lost)',
        ...col((r) => `${r.wsStorm.allReadyS?.toFixed(1) ?? '—'} (${r.wsStorm.lost})`),
      ],
      [
        'storm attempts shed and tried again: HTTP | WebSocket',
        ...col((r) => `${JSON.stringify(r.storm.shed ?? {})} | ${JSON.stringify(r.wsStorm.shed ?? {})}`),
      ],
      [
        'storm CPU per node, µs (gateway · Redis): HTTP | WebSocket',
        ...col((r) => `${stormCpu(r.storm)} | ${stormCpu(r.wsStorm)}`),
      ],
      [
        'WebSocket storm: heartbeats refused after the ack',
        ...col((r) => JSON.stringify(r.wsStorm.afterAck ?? {})),
      ],
    ],
  );
}

export function scaleGoals(runs: ScaleRun[]): Goal[] {
  const goals: Goal[] = [];
  for (const r of runs) {
    const tag = `${r.redis}, ${fmt.int(r.nodes)} nodes`;
    goals.push({
      name: `Redis memory per node (${tag})`,
      target: '≤ 1 KB',
      value: `${fmt.int(r.memory.perNodeBytes)} B`,
      pass: r.memory.perNodeBytes <= 1024,
    });
    goals.push({
      name: `selector bootstrap (${tag})`,
      target: r.nodes >= 100_000 ? '≤ 2 s' : '≤ 2 s (goal set at 100,000)',
      value: `${r.selector.readyS.toFixed(2)} s`,
      pass: r.selector.readyS <= 2,
    });
    for (const [how, st] of [
      ['HTTP', r.storm],
      ['WebSocket', r.wsStorm],
    ] as const) {
      goals.push({
        name: `reconnect storm of ${fmt.int(st.nodes)} over ${how} all ready, zero lost (${tag})`,
        target: '≤ 10 s, 0 lost',
        value: `${st.allReadyS?.toFixed(1) ?? '—'} s, ${st.lost} lost`,
        pass: st.lost === 0 && st.allReadyS !== null && st.allReadyS <= 10,
      });
    }
  }
  for (const g of goals) progress(`goal ${g.pass ? 'PASS' : 'FAIL'}: ${g.name}: ${g.value} (${g.target})`);
  return goals;
}
