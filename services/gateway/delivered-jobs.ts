/** Deliveries a socket remembers to send each assignment once (a node holds far fewer jobs). */
const DELIVERED_MEMORY = 1024;

/**
 * The job_assign frames delivered on one socket to a node that does not ack, where the
 * delivery is the acceptance (PROTOCOL.md "Acceptance"): each (job, attempt) at most once per
 * socket — the lingua client answers a second copy with a DUPLICATE_JOB_ID failure.
 */
export class DeliveredJobs {
  /** "<job>|<attempt>", oldest first */
  private readonly keys = new Set<string>();

  /**
   * What to do with `frame`: `send` (not a job_assign), `again` (delivered before: drop it), or
   * the job it assigns for the first time (send it, then accept it).
   */
  first(frame: string): 'send' | 'again' | { jobId: string; attemptId: number } {
    if (!frame.includes('"job_assign"')) return 'send';
    const job = JSON.parse(frame) as { type?: unknown; job_id?: unknown; attempt_id?: unknown };
    if (job.type !== 'job_assign' || typeof job.job_id !== 'string' || typeof job.attempt_id !== 'number')
      return 'send';
    const key = `${job.job_id}|${job.attempt_id}`;
    if (this.keys.has(key)) return 'again';
    if (this.keys.size >= DELIVERED_MEMORY) this.keys.delete(this.keys.values().next().value!);
    this.keys.add(key);
    return { jobId: job.job_id, attemptId: job.attempt_id };
  }
}
