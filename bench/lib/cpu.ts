/**
 * CPU accounting from /proc (Linux): per process (utime + stime of all its threads) and per
 * core (busy, and steal — on a shared VM the hypervisor's theft shows up there).
 * Elsewhere every figure is null and the benchmark still runs.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** USER_HZ: the unit of /proc times (almost always 100). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds (user + system, all threads) a live process has used; null if unreadable. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** The live child processes of `pid` (from /proc/<pid>/task/<tid>/children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) for (const child of text.split(/\s+/)) out.push(Number(child));
    }
  } catch {
    // gone, or not Linux
  }
  return out;
}

/**
 * CPU seconds of a process and its live children (a multi-process gateway: its primary and the
 * processes it forked); null if the process itself is unreadable.
 */
export function processTreeCpuSeconds(pid: number): number | null {
  const own = processCpuSeconds(pid);
  if (own === null) return null;
  return childPids(pid).reduce((sum, child) => sum + (processCpuSeconds(child) ?? 0), own);
}

export interface CoreTimes {
  busy: number;
  steal: number;
  total: number;
}

/** Per core (`cpu0`, `cpu1`, …), cumulative seconds since boot; empty if unreadable. */
export function coreTimes(): Record<string, CoreTimes> {
  const out: Record<string, CoreTimes> = {};
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return out;
  }
  const hz = ticksPerSecond();
  for (const line of text.split('\n')) {
    const m = /^(cpu\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = m[2]!
      .split(/\s+/)
      .map(Number);
    const busy = user + nice + system + irq + softirq;
    out[m[1]!] = { busy: busy / hz, steal: steal / hz, total: (busy + idle + iowait + steal) / hz };
  }
  return out;
}

export interface CpuSnapshot {
  at: number;
  processes: Record<string, number | null>;
  cores: Record<string, CoreTimes>;
}

export interface CpuUsage {
  /** Percent of ONE core, per labelled process, over the window (null if unreadable). */
  processes: Record<string, number | null>;
  /** Per core: busy % (not counting steal) and steal % of that core's time. */
  cores: Record<string, { busyPct: number; stealPct: number }>;
  /**
   * Busy time of all cores minus that of the tracked processes, in % of one core: other
   * processes on the machine, plus interrupt / softirq work (loopback TCP) charged to no task.
   */
  unaccountedPct: number | null;
}

/** Samples a labelled set of processes (each with its children) and every core. */
export class CpuMeter {
  private readonly pids = new Map<string, number>();

  track(label: string, pid: number | undefined): void {
    if (pid !== undefined && pid > 0) this.pids.set(label, pid);
  }

  untrack(label: string): void {
    this.pids.delete(label);
  }

  snapshot(): CpuSnapshot {
    const processes: Record<string, number | null> = {};
    for (const [label, pid] of this.pids) processes[label] = processTreeCpuSeconds(pid);
    const self = process.cpuUsage();
    processes['orchestrator'] = (self.user + self.system) / 1e6;
    return { at: performance.now(), processes, cores: coreTimes() };
  }

  static usage(a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
    const wall = (b.at - a.at) / 1000;
    const processes: Record<string, number | null> = {};
    for (const [label, end] of Object.entries(b.processes)) {
      const start = a.processes[label];
      processes[label] =
        end === null || start == null || wall <= 0 ? null : round1(((end - start) / wall) * 100);
    }
    const cores: CpuUsage['cores'] = {};
    for (const [core, end] of Object.entries(b.cores)) {
      const start = a.cores[core];
      const total = start ? end.total - start.total : 0;
      if (!start || total <= 0) continue;
      cores[core] = {
        busyPct: round1(((end.busy - start.busy) / total) * 100),
        stealPct: round1(((end.steal - start.steal) / total) * 100),
      };
    }
    const coreBusy = Object.values(cores).reduce((sum, c) => sum + c.busyPct, 0);
    const ours = Object.values(processes).reduce<number>((sum, p) => sum + (p ?? 0), 0);
    const unaccountedPct = Object.keys(cores).length > 0 ? round1(Math.max(0, coreBusy - ours)) : null;
    return { processes, cores, unaccountedPct };
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
