/**
 * The scale scenario's measured phases after registration (bench/scale.bench.ts): heartbeats at
 * the fleet's interval with dry-run jobs for choice latency, and the reconnect storm.
 */
import type { KeyBuilder } from '../../shared/keys.ts';
import type { ServiceProcess } from '../heartbeat/services.ts';
import { CpuMeter } from '../lib/cpu.ts';
import { histogramOf, scrape, sumOf } from '../lib/prometheus.ts';
import { fmt, progress } from '../lib/report.ts';
import { histogramDelta, histogramQuantile } from '../lib/stats.ts';
import { mergeCounts, totalVersion, type FleetProcess, type Inspect } from './deployment.ts';
import type { Supervisor } from '../lib/processes.ts';
import { nodeChild } from '../heartbeat/services.ts';
import { IpcClient } from '../lib/ipc.ts';
import type { ScaleRun, StormResult } from './report.ts';
import { waitForReady, type ReadyResult } from './snapshot-wait.ts';

interface HeartbeatPhase {
  fleets: FleetProcess[];
  worker: ServiceProcess;
  gateway: ServiceProcess;
  selector: ServiceProcess;
  selectorUrl: string;
  apiKey: string;
  inspect: Inspect;
  keys: KeyBuilder;
  redisPids: number[];
  offered: number;
  durationS: number;
}

interface FleetStop {
  sent: number;
  dropped: number;
  statuses: Record<string, number>;
  latencyMs: { p50: number; p99: number } | null;
}

/**
 * Heartbeats at `offered`/s (open loop, half from each fleet), 2 s of warm-up, then
 * `durationS` measured seconds with dry-run zh→en jobs one at a time.
 */
export async function heartbeatPhase(p: HeartbeatPhase): Promise<ScaleRun['heartbeats']> {
  const workerMetrics = `http://127.0.0.1:${p.worker.port}/metrics`;
  const selectorMetrics = `${p.selectorUrl}/metrics`;
  const cpu = new CpuMeter();
  cpu.track('worker', p.worker.proc.pid);
  cpu.track('gateway', p.gateway.proc.pid);
  cpu.track('selector', p.selector.proc.pid);
  p.redisPids.forEach((pid, i) => cpu.track(`redis${i}`, pid));
  p.fleets.forEach((f, i) => cpu.track(`fleet${i}`, f.proc.pid));
  await Promise.all(p.fleets.map((f) => f.ipc.request('start', { rate: p.offered / p.fleets.length })));
  await new Promise((r) => setTimeout(r, 2000)); // warm-up
  const before = {
    worker: await scrape(workerMetrics),
    selector: await scrape(selectorMetrics),
    versions: await totalVersion(p.inspect, p.keys),
  };
  const t0 = performance.now();
  const cpuStart = cpu.snapshot();
  const choice = await dryRunJobs(p.selectorUrl, p.apiKey, p.durationS * 1000);
  const usage = CpuMeter.usage(cpuStart, cpu.snapshot());
  const windowS = (performance.now() - t0) / 1000;
  const after = {
    worker: await scrape(workerMetrics),
    selector: await scrape(selectorMetrics),
    versions: await totalVersion(p.inspect, p.keys),
  };
  const stops = await Promise.all(p.fleets.map((f) => f.ipc.request<FleetStop>('stop', {}, 60_000)));
  const statuses = mergeCounts(stops.map((s) => s.statuses));
  const d = (name: string) => sumOf(after.worker, name) - sumOf(before.worker, name);
  const ticks = d('sb_reaper_ticks_total');
  const tickHist = histogramDelta(
    histogramOf(before.worker, 'sb_reaper_tick_duration_seconds'),
    histogramOf(after.worker, 'sb_reaper_tick_duration_seconds'),
  );
  const selHist = histogramDelta(
    histogramOf(before.selector, 'sb_selection_duration_seconds'),
    histogramOf(after.selector, 'sb_selection_duration_seconds'),
  );
  const redisCpu = p.redisPids.reduce((a, _, i) => a + (usage.processes[`redis${i}`] ?? 0), 0);
  const heartbeats: ScaleRun['heartbeats'] = {
    offeredPerSec: p.offered,
    achievedPerSec: (statuses['200'] ?? 0) / (windowS + 2), // sent over warm-up + window
    statuses,
    dropped: stops.reduce((a, s) => a + s.dropped, 0),
    latencyMs: stops[0]?.latencyMs
      ? { p50: stops[0].latencyMs.p50, p99: Math.max(...stops.map((s) => s.latencyMs?.p99 ?? 0)) }
      : null,
    workerCpuPct: usage.processes['worker'] ?? null,
    redisCpuPct: redisCpu,
    gatewayCpuPct: usage.processes['gateway'] ?? null,
    fleetCpuPct: p.fleets.reduce((a, _, i) => a + (usage.processes[`fleet${i}`] ?? 0), 0),
    otherCpuPct: usage.unaccountedPct,
    deltasPerSec: (after.versions - before.versions) / windowS,
    publishedNodesPerSec: d('sb_snapshot_published_nodes_total') / windowS,
    ticks,
    tickMs: {
      mean: ticks > 0 ? (tickHist.sum / tickHist.count) * 1000 : null,
      max: ticks > 0 ? (histogramQuantile(tickHist, 1)?.value ?? NaN) * 1000 : null,
    },
    recountedPerTick: ticks > 0 ? d('sb_slots_recounted_total') / ticks : null,
    choice: {
      jobs: choice.ok,
      p50Ms: selHist.count > 0 ? (histogramQuantile(selHist, 0.5)?.value ?? NaN) * 1000 : null,
      p99Ms: selHist.count > 0 ? (histogramQuantile(selHist, 0.99)?.value ?? NaN) * 1000 : null,
      candidates: choice.candidates,
    },
  };
  progress(
    `heartbeats ${fmt.int(heartbeats.achievedPerSec)}/s of ${fmt.int(p.offered)}/s offered, ` +
      `gateway ${fmt.pct(heartbeats.gatewayCpuPct)}, worker ${fmt.pct(heartbeats.workerCpuPct)}, ` +
      `redis ${fmt.pct(heartbeats.redisCpuPct)}, fleets ${fmt.pct(heartbeats.fleetCpuPct)}, other ${fmt.pct(heartbeats.otherCpuPct)}, ` +
      `${heartbeats.publishedNodesPerSec.toFixed(0)} published nodes/s, ` +
      `tick ${heartbeats.tickMs.mean?.toFixed(1)} ms, choice p99 ${heartbeats.choice.p99Ms?.toFixed(2)} ms`,
  );
  return heartbeats;
}

/** Dry-run zh→en jobs, one at a time, for `ms`: the selector's own selection histogram times them. */
async function dryRunJobs(
  url: string,
  apiKey: string,
  ms: number,
): Promise<{ ok: number; candidates: number | null }> {
  const end = performance.now() + ms;
  let ok = 0;
  let candidates: number | null = null;
  while (performance.now() < end) {
    const res = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', dry_run: true, payload: {} }),
    });
    const body = (await res.json()) as { breakdown?: { candidates?: number } };
    if (res.status === 200) {
      ok++;
      candidates = body.breakdown?.candidates ?? candidates;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ok, candidates };
}

/** The processes whose CPU a storm accounts per node. */
export interface StormCpu {
  gatewayPid: number | undefined;
  redisPids: number[];
}

/** Starts a CPU window over the gateway and Redis; its end gives µs per node. */
function stormCpuWindow(c: StormCpu): (nodes: number) => NonNullable<StormResult['cpuUsPerNode']> {
  const meter = new CpuMeter();
  meter.track('gateway', c.gatewayPid);
  c.redisPids.forEach((pid, i) => meter.track(`redis${i}`, pid));
  const start = meter.snapshot();
  return (nodes) => {
    const end = meter.snapshot();
    const usage = CpuMeter.usage(start, end);
    const wallS = (end.at - start.at) / 1000;
    const us = (pct: number | null | undefined) =>
      pct === null || pct === undefined ? null : ((pct / 100) * wallS * 1e6) / nodes;
    const redisPct = c.redisPids.reduce((a, _, i) => a + (usage.processes[`redis${i}`] ?? 0), 0);
    return { gateway: us(usage.processes['gateway']), redis: us(redisPct) };
  };
}

/**
 * Reconnect storm: `stormN` nodes (the first of each fleet's half) re-register with their
 * node tokens and heartbeat, `concurrency` in flight in all; then until each is published
 * `ready` with a heartbeat since the storm began, or 60 s ("lost" = not ready by then).
 */
export async function stormPhase(p: {
  fleets: FleetProcess[];
  inspect: Inspect;
  keys: KeyBuilder;
  stormN: number;
  /** where the second fleet's nodes start */
  half: number;
  concurrency: number;
  accounted: StormCpu;
}): Promise<StormResult> {
  progress(`reconnect storm: ${fmt.int(p.stormN)} nodes re-register and heartbeat at once`);
  const cpuWindow = stormCpuWindow(p.accounted);
  const stormStartEpoch = Date.now();
  const stormStart = performance.now();
  const parts = [
    { from: 0, count: Math.ceil(p.stormN / 2) },
    { from: p.half, count: Math.floor(p.stormN / 2) },
  ];
  const replies = await Promise.all(
    p.fleets.map((f, i) =>
      f.ipc.request<{ statuses: Record<string, number>; shed: Record<string, number> }>(
        'storm',
        { ...parts[i], concurrency: p.concurrency / p.fleets.length },
        600_000,
      ),
    ),
  );
  const registerS = (performance.now() - stormStart) / 1000;
  const ids = parts.flatMap((part) => Array.from({ length: part.count }, (_, k) => part.from + k));
  const ready: ReadyResult = await waitForReady(p.inspect, p.keys, ids, stormStartEpoch, 60_000);
  const storm = {
    nodes: p.stormN,
    registerS,
    allReadyS: ready.lost === 0 ? (ready.doneAt - stormStart) / 1000 : null,
    lost: ready.lost,
    statuses: mergeCounts(replies.map((r) => r.statuses)),
    shed: mergeCounts(replies.map((r) => r.shed)),
    cpuUsPerNode: cpuWindow(p.stormN),
  };
  progress(
    `storm: all re-registered in ${registerS.toFixed(1)} s, all ready ${storm.allReadyS?.toFixed(1) ?? '—'} s, lost ${storm.lost}; ` +
      `shed and retried ${JSON.stringify(storm.shed)}; ` +
      `CPU per node gateway ${fmt.int(storm.cpuUsPerNode.gateway ?? NaN)} µs, Redis ${fmt.int(storm.cpuUsPerNode.redis ?? NaN)} µs`,
  );
  return storm;
}

/**
 * The same nodes reconnect over WebSocket (`scale/ws-storm.child.ts`, one process): every
 * socket opened at once with the node's token, `node_register`, heartbeats from the ack on (a
 * socket closed before its ack reconnects 5 s later, as the lingua client); then
 * until each is published `ready` with a heartbeat since this storm began, or 60 s.
 */
export async function wsStormPhase(p: {
  sup: Supervisor;
  cpu: number | null;
  gatewayPort: number;
  fleets: FleetProcess[];
  inspect: Inspect;
  keys: KeyBuilder;
  stormN: number;
  half: number;
  accounted: StormCpu;
}): Promise<StormResult> {
  const parts = [
    { from: 0, count: Math.ceil(p.stormN / 2) },
    { from: p.half, count: Math.floor(p.stormN / 2) },
  ];
  const held = await Promise.all(
    p.fleets.map((f, i) => f.ipc.request<{ nodes: [number, string][] }>('tokens', parts[i], 60_000)),
  );
  const nodes = held.flatMap((h) => h.nodes);
  const proc = p.sup.spawn(nodeChild('ws storm', 'bench/scale/ws-storm.child.ts', p.cpu));
  const ipc = new IpcClient(proc.child, 'ws storm');
  p.sup.onCleanup('ws storm', () => proc.stop('SIGTERM', 3000));
  progress(`WebSocket reconnect storm: ${fmt.int(nodes.length)} nodes reconnect at once`);
  const cpuWindow = stormCpuWindow(p.accounted);
  const startEpoch = Date.now();
  const start = performance.now();
  const reply = await ipc.request<{
    statuses: Record<string, number>;
    registerMs: number;
    shed: Record<string, number>;
    errors: Record<string, number>;
  }>('storm', { url: `ws://127.0.0.1:${p.gatewayPort}/ws/node`, nodes, concurrency: nodes.length }, 600_000);
  const registerS = (performance.now() - start) / 1000;
  const ids = nodes.map(([index]) => index);
  const ready: ReadyResult = await waitForReady(p.inspect, p.keys, ids, startEpoch, 60_000);
  const cpuUsPerNode = cpuWindow(nodes.length);
  const closed = await ipc
    .request<{ afterAck: Record<string, number> }>('close', {}, 30_000)
    .catch(() => ({ afterAck: { close_failed: 1 } }));
  await proc.stop('SIGTERM', 3000);
  const storm = {
    nodes: nodes.length,
    registerS,
    allReadyS: ready.lost === 0 ? (ready.doneAt - start) / 1000 : null,
    lost: ready.lost,
    statuses: reply.statuses,
    shed: reply.shed,
    errorsBeforeAck: reply.errors,
    afterAck: closed.afterAck,
    cpuUsPerNode,
  };
  progress(
    `WebSocket storm: ${JSON.stringify(reply.statuses)} in ${registerS.toFixed(1)} s, all ready ` +
      `${storm.allReadyS?.toFixed(1) ?? '—'} s, lost ${storm.lost}; attempts shed (reconnected 5 s later) ` +
      `${JSON.stringify(reply.shed)}, error frames before the ack ${JSON.stringify(reply.errors)}, after it ` +
      `${JSON.stringify(closed.afterAck)}; CPU per node gateway ${fmt.int(cpuUsPerNode.gateway ?? NaN)} µs, ` +
      `Redis ${fmt.int(cpuUsPerNode.redis ?? NaN)} µs`,
  );
  return storm;
}
