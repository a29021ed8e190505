/**
 * Child processes of a benchmark: spawned pinned to a core with `taskset` (util-linux) when it
 * exists, their output kept (last lines only, never echoed), and every one of them stopped at
 * the end, on an error, and on Ctrl-C / SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { warn } from './report.ts';

let taskset: boolean | undefined;

/** True when `taskset` can be run; warns once when it cannot (processes then run unpinned). */
export function tasksetAvailable(): boolean {
  if (taskset === undefined) {
    taskset = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
    if (!taskset) {
      warn('taskset not found (util-linux): processes are NOT pinned to cores; figures are noisier');
    }
  }
  return taskset;
}

/** Pins every thread of a running process to `cpu`; false (with a warning) if that failed. */
export function pinProcess(pid: number, cpu: number, label: string): boolean {
  if (!tasksetAvailable()) return false;
  const res = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { encoding: 'utf8' });
  if (res.status !== 0) {
    warn(
      `could not pin ${label} (pid ${pid}) to cpu ${cpu}: ${(res.stderr || res.error?.message || '').trim()}`,
    );
    return false;
  }
  return true;
}

export interface ChildSpec {
  label: string;
  command: string;
  args: string[];
  /** Core (or taskset list, e.g. "0,1") to pin to (the whole process, from exec on); null = unpinned. */
  cpu: number | string | null;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Open a Node IPC channel (the child must be a Node process). */
  ipc?: boolean;
}

const TAIL_LINES = 60;

export class ManagedProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly tail: string[] = [];
  private readonly lineListeners = new Set<(line: string, stream: 'stdout' | 'stderr') => void>();
  private done = false;

  constructor(readonly spec: ChildSpec) {
    const pinned = spec.cpu !== null && tasksetAvailable();
    const [command, args] = pinned
      ? ['taskset', ['-c', String(spec.cpu), spec.command, ...spec.args]]
      : [spec.command, spec.args];
    this.child = spawn(command, args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: spec.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      });
      this.child.once('error', (err) => {
        this.push('stderr', `spawn failed: ${err.message}`);
        this.done = true;
        resolve({ code: null, signal: null });
      });
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      let partial = '';
      this.child[stream]?.setEncoding('utf8');
      this.child[stream]?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.push(stream, line);
      });
    }
  }

  get label(): string {
    return this.spec.label;
  }

  /** The pid of the process itself (taskset execs it, so the pid does not change). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.done;
  }

  private push(stream: 'stdout' | 'stderr', line: string): void {
    // V8's --trace-gc-nvp lines (bench/lib/gc-trace.ts) would push everything else out of the tail
    if (!line.includes(' allocated=')) {
      this.tail.push(stream === 'stderr' ? `! ${line}` : line);
      if (this.tail.length > TAIL_LINES) this.tail.shift();
    }
    for (const listener of this.lineListeners) listener(line, stream);
  }

  /** Calls `listener` with every line of output from now on. */
  onLine(listener: (line: string, stream: 'stdout' | 'stderr') => void): void {
    this.lineListeners.add(listener);
  }

  /** The last lines of output (stderr lines prefixed with `! `). */
  outputTail(lines = 20): string {
    return this.tail.slice(-lines).join('\n');
  }

  /**
   * Resolves with the first stdout line that `match` accepts (returning non-undefined);
   * rejects if the process exits first or the deadline passes.
   */
  waitForLine<T>(match: (line: string) => T | undefined, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = (fn: () => void): void => {
        clearTimeout(timer);
        this.lineListeners.delete(onLine);
        fn();
      };
      const onLine = (line: string, stream: 'stdout' | 'stderr'): void => {
        if (stream !== 'stdout') return;
        const value = match(line);
        if (value !== undefined) finish(() => resolve(value));
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(new Error(`${this.label}: not ready after ${timeoutMs} ms:\n${this.outputTail()}`)),
          ),
        timeoutMs,
      );
      this.lineListeners.add(onLine);
      void this.exited.then(({ code, signal }) =>
        finish(() =>
          reject(
            new Error(
              `${this.label} exited (code ${code}, signal ${signal}) before ready:\n${this.outputTail()}`,
            ),
          ),
        ),
      );
    });
  }

  /** `signal`, then SIGKILL after `graceMs` if still running. Resolves once it has exited. */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
    graceMs = 5000,
  ): Promise<{ code: number | null; signal: string | null }> {
    if (this.done) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => {
      if (!this.done) this.child.kill('SIGKILL');
    }, graceMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  killNow(): void {
    if (!this.done) this.child.kill('SIGKILL');
  }
}

/**
 * Rejects as soon as one of `procs` exits, with its exit status and last output, until
 * `disarm()` (call it before stopping them on purpose). Race a phase against `failed`.
 */
export function watchForExit(procs: ManagedProcess[]): { failed: Promise<never>; disarm: () => void } {
  let armed = true;
  const failed = new Promise<never>((_, reject) => {
    for (const p of procs) {
      void p.exited.then(({ code, signal }) => {
        if (armed)
          reject(
            new Error(`${p.label} exited unexpectedly (code ${code}, signal ${signal}):\n${p.outputTail()}`),
          );
      });
    }
  });
  failed.catch(() => undefined);
  return { failed, disarm: () => (armed = false) };
}

interface Cleanup {
  name: string;
  run: () => Promise<unknown>;
}

/**
 * Owns every child process and cleanup step of a run. `shutdown()` runs the cleanups in
 * reverse order of registration (so a scenario registers "stop gateway" after "stop Redis"
 * and the gateway goes first), then stops whatever process is still alive.
 */
export class Supervisor {
  private readonly processes = new Set<ManagedProcess>();
  private readonly cleanups: Cleanup[] = [];
  private shuttingDown: Promise<void> | null = null;
  /** The signal that interrupted the run, if one did: its handler owns the exit then. */
  interrupted: NodeJS.Signals | null = null;

  spawn(spec: ChildSpec): ManagedProcess {
    const proc = new ManagedProcess(spec);
    this.processes.add(proc);
    void proc.exited.then(() => this.processes.delete(proc));
    return proc;
  }

  /** Registers a cleanup step; returns a function that runs it now (once) and unregisters it. */
  onCleanup(name: string, run: () => Promise<unknown>): () => Promise<void> {
    let once: Promise<unknown> | null = null;
    const entry: Cleanup = { name, run: () => (once ??= run()) };
    this.cleanups.push(entry);
    return async () => {
      const i = this.cleanups.indexOf(entry);
      if (i >= 0) this.cleanups.splice(i, 1);
      await entry.run();
    };
  }

  /** Runs every registered cleanup (reverse order), then stops leftover processes. Reusable. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= (async () => {
      for (const entry of this.cleanups.splice(0).reverse()) {
        try {
          await entry.run();
        } catch (err) {
          console.error(`cleanup ${entry.name} failed: ${(err as Error).message}`);
        }
      }
      await Promise.all([...this.processes].map((p) => p.stop('SIGTERM', 3000)));
    })().finally(() => {
      this.shuttingDown = null;
    });
    return this.shuttingDown;
  }

  /** SIGKILLs every child synchronously (for process 'exit'). */
  killAll(): void {
    for (const p of this.processes) p.killNow();
  }

  /**
   * Ctrl-C / SIGTERM / SIGHUP: clean up (second signal: kill at once), exit 128+n.
   * 'exit': SIGKILL whatever is left.
   */
  installSignalHandlers(): void {
    const codes = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
    let firstAt = 0;
    for (const [signal, n] of Object.entries(codes)) {
      process.on(signal, () => {
        if (this.interrupted) {
          // The tsx CLI relays a signal it thinks we missed ~30 ms later: not a second Ctrl-C.
          if (performance.now() - firstAt < 1000) return;
          this.killAll();
          process.exit(128 + n);
        }
        this.interrupted = signal as NodeJS.Signals;
        firstAt = performance.now();
        console.error(`\n${signal}: stopping every benchmark process… (again to kill at once)`);
        void this.shutdown().finally(() => process.exit(128 + n));
      });
    }
    process.on('exit', () => this.killAll());
  }
}
