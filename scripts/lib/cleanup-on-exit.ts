import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Child bookkeeping: kill everything we spawned (and remove the temp dirs we created) when the
 * parent goes away. Callers add to and delete from the two sets; `installExitHooks()` is
 * idempotent.
 */

/** Spawned children that have not exited yet. */
export const liveChildren = new Set<ChildProcess>();
/** Temp dirs created for spawned servers (redis-server-process.ts) and not removed yet. */
export const ownedDirs = new Set<string>();
let exitHooksInstalled = false;

function killAllChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of ownedDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  ownedDirs.clear();
}

export function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllChildren);
  // A signal with no other listener would kill us without an 'exit' event: clean up, then re-raise
  // the signal so the default behaviour (terminate) still happens. If someone else handles the
  // signal (e.g. a graceful-shutdown handler), leave Redis alive: they will exit and 'exit' fires.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(sig) > 1) return;
      killAllChildren();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
