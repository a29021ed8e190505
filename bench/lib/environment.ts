/** What a result was measured on, so that two result files can be compared knowingly. */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, release } from 'node:os';
import { tasksetAvailable } from './processes.ts';
import { REPO_ROOT } from './report.ts';

export interface Environment {
  node: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  loadavg: number[];
  git: { commit: string | null; dirty: boolean | null };
}

function git(args: string[]): string | null {
  const res = spawnSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim() : null;
}

export function describeEnvironment(): Environment {
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return {
    node: process.version,
    kernel: release(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    git: { commit: git(['rev-parse', 'HEAD']), dirty: status === null ? null : status.length > 0 },
  };
}

/** The `environment` block of a result: the machine at the start, its load at the end, pinning. */
export function finalEnvironment<P>(
  atStart: Environment,
  redisVersion: string,
  pinning: P | null,
): Environment & { loadavgEnd: number[]; redis: string; taskset: boolean; pinning: P | null } {
  return {
    ...atStart,
    loadavgEnd: describeEnvironment().loadavg,
    redis: redisVersion,
    taskset: tasksetAvailable(),
    pinning,
  };
}
