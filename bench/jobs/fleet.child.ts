/**
 * The fleet of the jobs scenario (a child process, pinned by the orchestrator, so its CPU is
 * measured apart): N simulated nodes of `agent/fleet-simulator.ts`, each a real NodeAgent with
 * its own WebSocket, running simulated jobs of a fixed duration (lognormal sigma 0).
 *
 * Every `job_assign` a node receives is timestamped with epochNow() (performance.timeOrigin +
 * performance.now(), epoch ms at sub-ms resolution — the clock the job client stamps its POSTs
 * with) when the agent emits the event: the frame has been parsed and its `job_ack` handed to
 * the socket, microseconds after the frame was read. Kept per job id: the first receipt, and
 * how many receipts and which attempts followed. Every `job_result` a node sends is stamped the
 * same way as it is handed to the socket (`resultAt`: the last one sent for the job), the start
 * of "result visible after the node's job_result".
 *
 * Commands (IPC): start {url, token, nodes, maxJobs, jobMs, seed, rampUpMs} (resolves once every
 * node is registered) · clock · loop (event-loop delay since the previous call, then reset) ·
 * take (the assignment records so far, then forgets them) · summary · stop.
 */
import { FleetSimulator, type FleetSummary } from '../../agent/fleet-simulator.ts';
import { serveIpc } from '../lib/ipc.ts';
import { monitorLoopDelay } from './loop-delay.ts';
import { epochNow, type ClockReading } from './services.ts';

export interface AssignRecord {
  jobId: string;
  /** epochNow() of the first job_assign received for the job (any attempt, any node). */
  at: number;
  attempt: number;
  node: string;
  outcome: 'accepted' | 'duplicate' | 'declined';
  /** job_assign frames received for this job in all (> 1: a redelivery or another attempt). */
  receipts: number;
  /** Highest attempt_id received. */
  lastAttempt: number;
  /** epochNow() when a node handed the job's job_result to its socket (the last one); null = none sent. */
  resultAt: number | null;
}

let fleet: FleetSimulator | null = null;
let records = new Map<string, AssignRecord>();
const counts = { assigns: 0, accepted: 0, duplicate: 0, declined: 0, laterAttempts: 0 };
const loopDelay = monitorLoopDelay();

function onAssign(jobId: string, attempt: number, node: string, outcome: AssignRecord['outcome']): void {
  const at = epochNow();
  counts.assigns++;
  counts[outcome]++;
  if (attempt > 1) counts.laterAttempts++;
  const known = records.get(jobId);
  if (known) {
    known.receipts++;
    known.lastAttempt = Math.max(known.lastAttempt, attempt);
    return;
  }
  records.set(jobId, {
    jobId,
    at,
    attempt,
    node,
    outcome,
    receipts: 1,
    lastAttempt: attempt,
    resultAt: null,
  });
}

function onResult(jobId: string): void {
  const known = records.get(jobId);
  if (known) known.resultAt = epochNow();
}

async function start(msg: Record<string, unknown>): Promise<{ registered: number; ms: number }> {
  if (fleet) throw new Error('already started');
  const nodes = Number(msg['nodes']);
  const started = performance.now();
  const f = new FleetSimulator({
    gatewayUrls: [String(msg['url'])],
    token: String(msg['token']),
    nodes,
    idPrefix: 'jobs',
    maxJobs: Number(msg['maxJobs']),
    job: { meanMs: Number(msg['jobMs']), sigma: 0, failureRate: 0 },
    rampUpMs: Number(msg['rampUpMs']),
    seed: Number(msg['seed']),
    summaryIntervalMs: 0,
    print: () => undefined,
    shutdownGraceMs: 5000,
  });
  fleet = f;
  for (const agent of f.agents) {
    agent.on('job_assign', (frame, outcome) =>
      onAssign(frame.job_id, frame.attempt_id, agent.nodeId ?? '', outcome),
    );
    agent.on('job_result', (frame) => onResult(String(frame['job_id'])));
  }
  await f.start();
  const deadline = performance.now() + 120_000;
  while (f.registered < nodes) {
    if (performance.now() > deadline) {
      throw new Error(
        `${f.registered} of ${nodes} nodes registered after 120 s: ${FleetSimulator.format(f.summary())}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { registered: f.registered, ms: performance.now() - started };
}

serveIpc(async (cmd, msg) => {
  switch (cmd) {
    case 'start':
      return start(msg);
    case 'clock':
      return { hr: epochNow(), wall: Date.now() } satisfies ClockReading;
    case 'loop':
      return loopDelay();
    case 'take': {
      const out = [...records.values()];
      records = new Map();
      return { records: out, counts };
    }
    case 'summary':
      return (fleet?.summary() ?? null) satisfies FleetSummary | null;
    case 'stop':
      await fleet?.stop();
      return fleet?.summary() ?? null;
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});
