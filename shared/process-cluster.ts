import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from './logger.ts';

/**
 * N processes of one service on ONE port (issue 13 deliverable 2), with node:cluster: the
 * primary holds the listening socket and hands each new connection to the next child in turn
 * (round robin, Node's default on Linux); children are ordinary service processes. The primary
 * connects to nothing: it forks, restarts a child that died (with back-off when one keeps
 * dying), forwards SIGTERM/SIGINT and waits for every child's graceful stop, and aggregates
 * the children's metrics (prom-client's AggregatorRegistry) for whichever child is scraped.
 */

/** SB_GATEWAY_PROCESSES: 0 = one per core this process may use. */
export function processCount(setting: number): number {
  return setting > 0 ? setting : availableParallelism();
}

/** True in a child forked by `runPrimary`. */
export function isClusterChild(): boolean {
  return cluster.isWorker;
}

const METRICS_REQUEST = 'sb:cluster-metrics';
const METRICS_TIMEOUT_MS = 6000;
/** A child that dies within this of its start counts as crashing: its restart is delayed. */
const CRASH_WINDOW_MS = 5000;
const MAX_RESTART_DELAY_MS = 30_000;

interface MetricsMessage {
  type: typeof METRICS_REQUEST;
  id: number;
  text?: string;
  error?: string;
}

function isMetricsMessage(m: unknown): m is MetricsMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === METRICS_REQUEST;
}

export interface PrimaryOptions {
  processes: number;
  /** The children's graceful-stop deadline (SB_SHUTDOWN_TIMEOUT_MS); then SIGKILL. */
  shutdownTimeoutMs: number;
  log: Logger;
  /** Once every child listens, the first time: the port they share. */
  onListening: (port: number) => void;
}

/**
 * The primary: forks `processes` children running this same entry point, keeps that many
 * running, stops them all on SIGTERM/SIGINT (exit 0 when every child stopped cleanly in time).
 */
export function runPrimary(opts: PrimaryOptions): void {
  const { log } = opts;
  const aggregator = new AggregatorRegistry();
  const started = new Map<number, number>();
  let stopping = false;
  let crashes = 0;
  let announced = false;
  let failedStop = false;
  const listening = new Set<number>();

  const fork = (): Worker => {
    const child = cluster.fork();
    started.set(child.id, Date.now());
    child.on('message', (message: unknown) => {
      if (!isMetricsMessage(message) || message.text !== undefined) return;
      aggregator.clusterMetrics().then(
        (text) => child.isConnected() && child.send({ type: METRICS_REQUEST, id: message.id, text }),
        (err: unknown) =>
          child.isConnected() && child.send({ type: METRICS_REQUEST, id: message.id, error: String(err) }),
      );
    });
    return child;
  };

  cluster.on('listening', (child, address) => {
    listening.add(child.id);
    if (!announced && listening.size >= opts.processes) {
      announced = true;
      opts.onListening(address.port);
    }
  });
  cluster.on('exit', (child, code, signal) => {
    listening.delete(child.id);
    const ranMs = Date.now() - (started.get(child.id) ?? 0);
    started.delete(child.id);
    if (stopping) {
      if (code !== 0) failedStop = true;
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        log.info({ failedStop }, 'every process stopped');
        process.exit(failedStop ? 1 : 0);
      }
      return;
    }
    crashes = ranMs < CRASH_WINDOW_MS ? crashes + 1 : 0;
    const delayMs = crashes === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 250 * 2 ** (crashes - 1));
    log.error(
      { pid: child.process.pid, code, signal, ranMs, restartInMs: delayMs },
      'a service process exited: starting another',
    );
    setTimeout(() => {
      if (!stopping) fork();
    }, delayMs).unref();
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const children = Object.values(cluster.workers ?? {}).filter((c): c is Worker => c !== undefined);
    log.info({ signal, processes: children.length }, 'shutting down every process');
    if (children.length === 0) process.exit(0);
    for (const child of children) child.process.kill('SIGTERM');
    setTimeout(() => {
      for (const child of Object.values(cluster.workers ?? {})) child?.process.kill('SIGKILL');
      log.error('processes still running after SB_SHUTDOWN_TIMEOUT_MS: killed');
      process.exit(1);
    }, opts.shutdownTimeoutMs + 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  for (let i = 0; i < opts.processes; i++) fork();
}

/**
 * In a child: `registry` is what the primary aggregates, and the returned function gives the
 * aggregate of every child (what this child's /metrics answers).
 */
export function clusterChildMetrics(registry: Registry): () => Promise<string> {
  new AggregatorRegistry(); // answers the primary's requests for this process's metrics
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const pending = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void }>();
  process.on('message', (message: unknown) => {
    if (!isMetricsMessage(message) || (message.text === undefined && message.error === undefined)) return;
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.text !== undefined) waiter.resolve(message.text);
    else waiter.reject(new Error(message.error));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('the primary did not answer with the aggregated metrics'));
      }, METRICS_TIMEOUT_MS);
      pending.set(id, {
        resolve: (t) => (clearTimeout(timer), resolve(t)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      process.send!({ type: METRICS_REQUEST, id });
    });
}
