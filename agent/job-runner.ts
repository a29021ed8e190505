import type { AgentLog } from './agent-log.ts';
import type { JobAssign, JobCancel, JobOutcome } from './protocol.ts';
import type { TimerHandle, Timers } from './timers.ts';

/** What a handler gets besides the job. */
export interface JobContext {
  /** Aborted on `job_cancel` (no result is sent then) or when the agent stops (a failure result is). */
  signal: AbortSignal;
  /** Sends `job_started` (once; later calls do nothing). */
  started: () => void;
  nodeId: string;
}

/**
 * Runs one job. Resolves with the `job_result` fields (success defaults to true); a throw
 * becomes `success: false` with `error: {code: err.code ?? "JOB_FAILED", message}`.
 */
export type JobHandler = (job: JobAssign, ctx: JobContext) => Promise<JobOutcome | void>;

export interface JobStats {
  received: number;
  /** Same job and attempt assigned again while running: acked again, not run twice. */
  duplicates: number;
  /** Not acked: draining, stopping, no handler, or at max_concurrent_jobs. */
  declined: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

export interface JobRunnerDeps {
  handler: JobHandler | null;
  maxJobs(): number;
  maxMessageBytes: number;
  /** Sends a frame now, or keeps it until the agent is registered again. */
  send(frame: Record<string, unknown>): void;
  nodeId(): string;
  timers: Timers;
  log: AgentLog;
}

interface RunningJob {
  job: JobAssign;
  controller: AbortController;
  startedSent: boolean;
  /** Cancelled by the gateway: the attempt is over, its result is not wanted. */
  cancelled: boolean;
  /** Aborted because the agent is stopping: a failure result is still sent. */
  stopping: boolean;
  startedAt: number;
}

const SHUTDOWN_CODE = 'NODE_SHUTTING_DOWN';
/** Error texts are at most 4096 characters on the wire. */
const MAX_TEXT = 4000;

/**
 * The job side of the agent: for each `job_assign` send `job_ack` at once, run the handler,
 * relay `started()` as `job_started`, then send `job_result`. Jobs are keyed by job and attempt;
 * `job_cancel` (by job id) aborts every attempt of that job and suppresses its result.
 */
export class JobRunner {
  /** No new jobs (drain, stop): assignments are declined, i.e. not acked. */
  draining = false;
  readonly stats: JobStats = {
    received: 0,
    duplicates: 0,
    declined: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
  };
  private readonly running = new Map<string, RunningJob>();
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: JobRunnerDeps) {}

  get count(): number {
    return this.running.size;
  }

  /** Returns what happened to the assignment. */
  assign(job: JobAssign): 'accepted' | 'duplicate' | 'declined' {
    this.deps.log.debug({ jobId: job.job_id, attempt: job.attempt_id }, 'job_assign');
    this.stats.received++;
    const key = keyOf(job.job_id, job.attempt_id);
    if (this.running.has(key)) {
      this.stats.duplicates++;
      this.deps.send(this.progress('job_ack', job));
      return 'duplicate';
    }
    const reason = !this.deps.handler
      ? 'no job handler'
      : this.draining
        ? 'draining'
        : this.running.size >= this.deps.maxJobs()
          ? `at max_concurrent_jobs (${this.deps.maxJobs()})`
          : null;
    if (reason) {
      this.stats.declined++;
      this.deps.log.warn({ jobId: job.job_id, attempt: job.attempt_id, reason }, 'job declined (not acked)');
      return 'declined';
    }
    const entry: RunningJob = {
      job,
      controller: new AbortController(),
      startedSent: false,
      cancelled: false,
      stopping: false,
      startedAt: performance.now(),
    };
    this.running.set(key, entry);
    this.deps.send(this.progress('job_ack', job));
    void this.run(key, entry);
    return 'accepted';
  }

  /** Aborts every running attempt of the job; returns how many. */
  cancel(frame: JobCancel): number {
    let n = 0;
    for (const entry of this.running.values()) {
      if (entry.job.job_id !== frame.job_id || entry.cancelled) continue;
      entry.cancelled = true;
      n++;
      this.stats.cancelled++;
      const reason = frame.reason ?? 'cancelled by the scheduler';
      entry.controller.abort(codedError('JOB_CANCELLED', reason));
    }
    this.deps.log.info({ jobId: frame.job_id, reason: frame.reason, aborted: n }, 'job_cancel');
    return n;
  }

  /** Aborts every running job because the agent stops; their failure results are still sent. */
  abortAll(message: string): void {
    for (const entry of this.running.values()) {
      if (entry.cancelled) continue;
      entry.stopping = true;
      entry.controller.abort(codedError(SHUTDOWN_CODE, message));
    }
  }

  /** Resolves true once no job runs, or false after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.running.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: TimerHandle | null = null;
      const done = () => {
        timer?.cancel();
        resolve(true);
      };
      this.idleWaiters.push(done);
      timer = this.deps.timers.after(timeoutMs, () => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      });
    });
  }

  private async run(key: string, entry: RunningJob): Promise<void> {
    const { job } = entry;
    let result: Record<string, unknown> | null;
    try {
      const outcome =
        (await this.deps.handler!(job, {
          signal: entry.controller.signal,
          nodeId: this.deps.nodeId(),
          started: () => {
            if (entry.startedSent || entry.cancelled) return;
            entry.startedSent = true;
            this.deps.send(this.progress('job_started', job));
          },
        })) ?? {};
      result = entry.cancelled ? null : this.result(entry, outcome);
    } catch (err) {
      result = entry.cancelled ? null : this.result(entry, failure(err, entry.stopping));
    }
    this.running.delete(key);
    entry.startedSent = true; // a late started() must not follow the result
    if (result) {
      if (result['success'] === true) this.stats.succeeded++;
      else this.stats.failed++;
      this.deps.send(result);
    } else {
      this.deps.log.debug({ jobId: job.job_id, attempt: job.attempt_id }, 'cancelled job ended; no result');
    }
    if (this.running.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private progress(type: string, job: JobAssign): Record<string, unknown> {
    const frame: Record<string, unknown> = {
      type,
      job_id: job.job_id,
      attempt_id: job.attempt_id,
      node_id: this.deps.nodeId(),
    };
    if (typeof job.session_id === 'string') frame['session_id'] = job.session_id;
    if (typeof job.trace_id === 'string') frame['trace_id'] = job.trace_id;
    if (typeof job['traceparent'] === 'string') frame['traceparent'] = job['traceparent'];
    return frame;
  }

  private result(entry: RunningJob, outcome: JobOutcome): Record<string, unknown> {
    const { job } = entry;
    const frame: Record<string, unknown> = {
      utterance_index: job.utterance_index ?? undefined,
      processing_time_ms: Math.round(performance.now() - entry.startedAt),
      ...outcome,
      ...this.progress('job_result', job),
      success: outcome.success ?? true,
    };
    const bytes = Buffer.byteLength(JSON.stringify(frame));
    if (bytes <= this.deps.maxMessageBytes) return frame;
    this.deps.log.warn({ jobId: job.job_id, bytes }, 'job_result too large; sending a failure instead');
    return {
      ...this.progress('job_result', job),
      success: false,
      processing_time_ms: frame['processing_time_ms'],
      error: {
        code: 'RESULT_TOO_LARGE',
        message: `job_result of ${bytes} bytes exceeds the gateway limit of ${this.deps.maxMessageBytes}`,
      },
    };
  }
}

function keyOf(jobId: string, attemptId: number): string {
  return `${attemptId}|${jobId}`;
}

function codedError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

function failure(err: unknown, stopping: boolean): JobOutcome {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code =
    typeof e?.code === 'string' && e.code.length > 0 ? e.code : stopping ? SHUTDOWN_CODE : 'JOB_FAILED';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return { success: false, error: { code: code.slice(0, 128), message: message.slice(0, MAX_TEXT) } };
}
