/**
 * V8's `--trace-gc-nvp` lines of a child process, accumulated as they arrive: every GC line
 * carries `allocated=<bytes allocated since the previous GC>`, its `pause=<ms>` and its kind
 * (`gc=s` scavenge, `gc=mc`/`gc=ms` mark-compact, `gc=mmc` minor mark-compact). Two snapshots
 * around a window give the bytes the process allocated in it (to within one GC cycle: bytes
 * allocated after the last GC in the window are counted by the next one) and its pauses.
 */
import type { ManagedProcess } from './processes.ts';

/** The V8 flag that makes a Node process print the lines this reads (on stdout). */
export const GC_TRACE_FLAG = '--trace-gc-nvp';

export interface GcTotals {
  allocatedBytes: number;
  /** GC lines seen, by kind (`s`, `mc`, `ms`, `mmc`, …). */
  count: Record<string, number>;
  /** Summed pause, ms, by kind. */
  pauseMs: Record<string, number>;
  /** Pauses of 5 ms or more (any kind). */
  pausesOver5ms: number;
  maxPauseMs: number;
}

export interface GcWindow extends GcTotals {
  /** Mark-compact pauses in the window (`mc` + `ms`). */
  markCompacts: number;
}

const FIELD = /(?:^|\s)(pause|gc|allocated)=(\S+)/g;

export class GcTrace {
  private totals: GcTotals = { allocatedBytes: 0, count: {}, pauseMs: {}, pausesOver5ms: 0, maxPauseMs: 0 };
  /** Largest pause since the last snapshot (the window's max). */
  private windowMax = 0;

  /** Reads `proc`'s stdout from now on (a cluster's children write to the same stdout). */
  static attach(proc: ManagedProcess): GcTrace {
    const trace = new GcTrace();
    proc.onLine((line, stream) => {
      if (stream === 'stdout' && line.includes(' allocated=')) trace.add(line);
    });
    return trace;
  }

  add(line: string): void {
    let pause = 0;
    let kind = '';
    let allocated = 0;
    for (const m of line.matchAll(FIELD)) {
      if (m[1] === 'pause') pause = Number(m[2]);
      else if (m[1] === 'gc') kind = m[2]!;
      else allocated = Number(m[2]);
    }
    if (!kind) return;
    const t = this.totals;
    t.allocatedBytes += Number.isFinite(allocated) ? allocated : 0;
    t.count[kind] = (t.count[kind] ?? 0) + 1;
    t.pauseMs[kind] = (t.pauseMs[kind] ?? 0) + (Number.isFinite(pause) ? pause : 0);
    if (pause >= 5) t.pausesOver5ms++;
    if (pause > this.windowMax) this.windowMax = pause;
  }

  /** A copy of the running totals; resets the window's max pause. */
  snapshot(): GcTotals {
    const t = this.totals;
    const copy = { ...t, count: { ...t.count }, pauseMs: { ...t.pauseMs }, maxPauseMs: this.windowMax };
    this.windowMax = 0;
    return copy;
  }

  static delta(a: GcTotals, b: GcTotals): GcWindow {
    const sub = (x: Record<string, number>, y: Record<string, number>) =>
      Object.fromEntries(Object.keys(y).map((k) => [k, Math.round(((y[k] ?? 0) - (x[k] ?? 0)) * 10) / 10]));
    const count = sub(a.count, b.count);
    return {
      allocatedBytes: b.allocatedBytes - a.allocatedBytes,
      count,
      pauseMs: sub(a.pauseMs, b.pauseMs),
      pausesOver5ms: b.pausesOver5ms - a.pausesOver5ms,
      maxPauseMs: b.maxPauseMs,
      markCompacts: (count['mc'] ?? 0) + (count['ms'] ?? 0),
    };
  }
}
