import { isClientFault, type NodeQuarantine } from '../../shared/quarantine.ts';
import type { AdvanceStatus, JobRecordStore } from '../../shared/store/job-record.ts';
import type { SlotStore } from '../../shared/store/slots.ts';

export type ProgressOutcome = 'applied' | 'duplicate' | 'stale';

/**
 * A node's job_ack / job_started / job_result, written for its CURRENT attempt only: the node
 * side (reservation → running job → released, on the node's shard: SlotStore) and the job record
 * (on the job's shard: JobRecordStore) are separate slots, hence two idempotent scripts, node
 * side first.
 */
export class JobProgress {
  constructor(
    private readonly slots: SlotStore,
    private readonly records: JobRecordStore,
    /** SB_JOB_TIMEOUT_MS: for a job whose record names no `timeout_ms` */
    private readonly jobTimeoutMs: number,
    private readonly partialStreamCap = 1000,
    /** Counts failed results and node errors against the node (README "Quarantine"). */
    private readonly quarantine: NodeQuarantine | null = null,
  ) {}

  /** A node_error: counted as a fault of the node. */
  async nodeFault(nodeId: string): Promise<void> {
    await this.quarantine?.fault(nodeId, 'node_error');
  }

  /**
   * The attempt is accepted: a job_ack, or (for a node that does not ack) its delivery on the
   * socket. Its deadline is now + the job's `timeout_ms` (SB_JOB_TIMEOUT_MS when it has none).
   */
  async ack(nodeId: string, jobId: string, attempt: number): Promise<ProgressOutcome> {
    const timeout = (await this.records.timeoutMs(jobId)) ?? this.jobTimeoutMs;
    const acked = await this.slots.ack(nodeId, jobId, attempt, timeout);
    if (acked === 'stale') return 'stale';
    const advanced = await this.advance(nodeId, jobId, attempt, 'accepted');
    return acked === 'already_running' && advanced !== 'applied' ? 'duplicate' : advanced;
  }

  started(nodeId: string, jobId: string, attempt: number): Promise<ProgressOutcome> {
    return this.advance(nodeId, jobId, attempt, 'running');
  }

  async result(
    nodeId: string,
    jobId: string,
    attempt: number,
    frame: Record<string, unknown>,
  ): Promise<ProgressOutcome> {
    const success = frame['success'] === true;
    // the lingua client's answer to a copy of a job it already runs: not its verdict on the job
    if (!success && isDuplicateDelivery(frame['error'])) return 'duplicate';
    const { type: _type, ...result } = frame;
    const error = success
      ? null
      : (frame['error'] ?? { code: 'NODE_ERROR', message: 'the node reported a failure' });
    const outcome = await this.advance(
      nodeId,
      jobId,
      attempt,
      success ? 'finished' : 'failed',
      result,
      error,
    );
    // Release whatever this node holds for the attempt, even for a stale one: the slot is free.
    await this.slots.release(nodeId, jobId, attempt);
    // the job's verdict, once: a success starts the node's fault count over, a failure adds to it
    if (outcome === 'applied' && this.quarantine !== null) {
      if (success) await this.quarantine.success(nodeId);
      else if (!isClientFault(error)) await this.quarantine.fault(nodeId, 'job_failed');
    }
    return outcome;
  }

  /**
   * An asr_partial of the job the node runs: appended to the job's partials while the job is
   * not terminal and the node is its current one; otherwise ignored ('stale').
   */
  async partial(nodeId: string, jobId: string, text: string, isFinal: boolean): Promise<ProgressOutcome> {
    const appended = await this.records.appendPartial(jobId, nodeId, text, isFinal, this.partialStreamCap);
    return appended ? 'applied' : 'stale';
  }

  private advance(
    nodeId: string,
    jobId: string,
    attempt: number,
    status: AdvanceStatus,
    result?: unknown,
    error?: unknown,
  ): Promise<ProgressOutcome> {
    return this.records.advance(jobId, attempt, status, nodeId, result, error);
  }
}

/** `PROCESSING_ERROR` "DUPLICATE_JOB_ID: …": the lingua client refusing a second copy of a job. */
function isDuplicateDelivery(error: unknown): boolean {
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' && message.startsWith('DUPLICATE_JOB_ID');
}
