/**
 * End-to-end staleness probe of the snapshot scenario, measured client-side and independently
 * of the worker's own metrics: every `intervalMs` it picks a node, reads the node's published
 * checkpoint entry, makes the load generator send that node a heartbeat whose cpu figure is
 * `jump` points away from the published one (well above SB_LOAD_CHANGE_THRESHOLD, so the
 * heartbeat is significant), and polls `HGET {<prefix>:s<k>}:ckpt <id>` every `pollMs` until
 * the entry carries that figure. Until then every heartbeat of the node carries it too (the
 * node's load stays up, as a real one would), so a later heartbeat cannot undo the change
 * before a flush publishes it; afterwards the node goes back to its scheduled figures.
 *
 * Measured: probe requested (before the IPC hop to the load generator) → entry seen. It
 * includes the IPC hop, the WebSocket, the gateway, the flush delay and queueing, the flush,
 * and up to one poll interval (+ one HGET round trip).
 */
import type { Redis } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';
import type { IpcClient } from '../lib/ipc.ts';
import { benchNodeId } from '../lib/node-messages.ts';
import { summarize, type SampleSummary } from '../lib/stats.ts';
import { decodeEntry } from '../../shared/snapshot-entry.ts';

export interface ProbeOptions {
  nodes: number;
  intervalMs: number;
  pollMs: number;
  timeoutMs: number;
  /** cpu points between the published figure and the probe's. */
  jump: number;
}

export interface ProbeResult {
  options: ProbeOptions;
  started: number;
  seen: number;
  /** Not seen within timeoutMs (counted in no percentile: see `seen`). */
  timedOut: number;
  /** The node had no checkpoint entry to compare with. */
  skipped: number;
  failed: number;
  firstFailure: string | null;
  /** Probe requested → entry seen in the checkpoint, client side (ms). */
  endToEndMs: SampleSummary | null;
  /**
   * Where the time went, from the wall clock (ms resolution; one host, one clock), per seen
   * probe, using the entry's hb (heartbeat received by the gateway) and at (flush built it):
   *   ingress = probe requested → hb: IPC hop, load generator, WebSocket, gateway queueing;
   *   server  = hb → at: dirty set, flush delay, job queueing, the flush reading the node;
   *   egress  = at → seen: the publish script, then up to one poll interval.
   * When a later heartbeat of the node reached the gateway before the flush read it, hb is that
   * heartbeat's: ingress is then overstated and server understated by the same amount.
   */
  ingressMs: SampleSummary | null;
  serverMs: SampleSummary | null;
  egressMs: SampleSummary | null;
  polls: number;
  /** Achieved time between two polls of one probe (sleep + HGET round trip), ms. */
  meanPollGapMs: number | null;
}

interface Entry {
  cpu: number;
  at: number;
  hb: number;
}

function parseEntry(text: string | null, id: string): Entry | null {
  if (text === null) return null;
  const e = (decodeEntry(JSON.parse(text), id)?.entry ?? {}) as Partial<Entry>;
  return typeof e.cpu === 'number' ? { cpu: e.cpu, at: Number(e.at), hb: Number(e.hb) } : null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Node indices in a stride coprime with `n` (a prime), so nodes come back only after all n. */
const STRIDE = 7919;

export class StalenessProbe {
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private readonly active = new Set<number>();
  private readonly running = new Set<Promise<void>>();
  private readonly endToEnd: number[] = [];
  private readonly ingress: number[] = [];
  private readonly server: number[] = [];
  private readonly egress: number[] = [];
  private started = 0;
  private timedOut = 0;
  private skipped = 0;
  private failed = 0;
  private firstFailure: string | null = null;
  private polls = 0;
  private pollTime = 0;

  /** `redis`: a connection of the probe's own, so that polls never queue behind other reads. */
  constructor(
    private readonly redis: Redis,
    private readonly keys: KeyBuilder,
    private readonly loadgen: IpcClient,
    private readonly options: ProbeOptions,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.launch(), this.options.intervalMs);
  }

  /** No new probe; those under way go on (see finish). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Stops, waits for the probes under way, and summarises. */
  async finish(): Promise<ProbeResult> {
    this.stop();
    await Promise.all([...this.running]);
    return {
      options: this.options,
      started: this.started,
      seen: this.endToEnd.length,
      timedOut: this.timedOut,
      skipped: this.skipped,
      failed: this.failed,
      firstFailure: this.firstFailure,
      endToEndMs: this.endToEnd.length ? summarize(this.endToEnd) : null,
      ingressMs: this.ingress.length ? summarize(this.ingress) : null,
      serverMs: this.server.length ? summarize(this.server) : null,
      egressMs: this.egress.length ? summarize(this.egress) : null,
      polls: this.polls,
      meanPollGapMs: this.polls > 0 ? this.pollTime / this.polls : null,
    };
  }

  private launch(): void {
    const n = this.options.nodes;
    let index = (this.seq++ * STRIDE) % n;
    for (let i = 0; i < n && this.active.has(index); i++) index = (index + 1) % n;
    if (this.active.has(index)) return;
    this.active.add(index);
    this.started++;
    const run = this.probe(index)
      .catch((err: unknown) => {
        this.failed++;
        this.firstFailure ??= err instanceof Error ? err.message : String(err);
      })
      .finally(() => {
        this.active.delete(index);
        this.running.delete(run);
      });
    this.running.add(run);
  }

  private async probe(index: number): Promise<void> {
    const { jump, pollMs, timeoutMs } = this.options;
    const id = benchNodeId(index);
    const checkpoint = this.keys.forNode(id).checkpoint;
    const before = parseEntry(await this.redis.hget(checkpoint, id), id);
    if (!before) {
      this.skipped++;
      return;
    }
    const cpu = before.cpu <= 50 ? before.cpu + jump : before.cpu - jump;
    const t0 = performance.now();
    const t0Wall = Date.now();
    try {
      await this.loadgen.request('probe', { index, cpu }, timeoutMs);
      for (let last = performance.now(); ;) {
        const entry = parseEntry(await this.redis.hget(checkpoint, id), id);
        const now = performance.now();
        this.polls++;
        this.pollTime += now - last;
        last = now;
        if (entry?.cpu === cpu) {
          this.endToEnd.push(now - t0);
          this.ingress.push(entry.hb - t0Wall);
          this.server.push(entry.at - entry.hb);
          this.egress.push(Date.now() - entry.at);
          return;
        }
        if (now - t0 > timeoutMs) {
          this.timedOut++;
          return;
        }
        await sleep(pollMs);
      }
    } finally {
      await this.loadgen.request('release', { index }).catch(() => undefined);
    }
  }
}
