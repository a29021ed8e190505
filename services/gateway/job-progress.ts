import { JOB_INDEX_CAP, type KeyBuilder } from '../../shared/keys.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import { isClientFault, type NodeQuarantine } from '../../shared/quarantine.ts';
import type { RedisClient } from '../../shared/redis-client.ts';

export type ProgressOutcome = 'applied' | 'duplicate' | 'stale';

/**
 * A node's job_ack / job_started / job_result, written for its CURRENT attempt only: the node
 * side (reservation → running job → released, on the node's shard) and the job record (on the
 * job's shard) are separate slots, hence two idempotent scripts, node side first.
 */
export class JobProgress {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly queues: DerivedWorkQueues,
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
    const timeout = Number(await this.redis.hget(this.keys.job(jobId), 'timeout_ms'));
    const [code, dirtyWasEmpty] = await this.redis.ackJob(
      ...this.keys.slotKeys(nodeId, jobId),
      nodeId,
      jobId,
      attempt,
      Date.now(),
      timeout > 0 ? timeout : this.jobTimeoutMs,
    );
    if (code === -1) return 'stale';
    if (dirtyWasEmpty === 1) await this.queues.requestFlush(this.keys.shardOf(nodeId));
    const advanced = await this.advance(nodeId, jobId, attempt, 'accepted');
    return code === 2 && advanced !== 'applied' ? 'duplicate' : advanced;
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
    const [, dirtyWasEmpty] = await this.redis.releaseJob(
      ...this.keys.slotKeys(nodeId, jobId),
      nodeId,
      jobId,
      attempt,
    );
    if (dirtyWasEmpty === 1) await this.queues.requestFlush(this.keys.shardOf(nodeId));
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
    const code = await this.redis.appendPartial(
      this.keys.job(jobId),
      this.keys.partials(jobId),
      nodeId,
      text,
      isFinal ? '1' : '0',
      Date.now(),
      this.partialStreamCap,
      this.keys.jobEventsOf(jobId),
      jobId,
    );
    return code === 1 ? 'applied' : 'stale';
  }

  private async advance(
    nodeId: string,
    jobId: string,
    attempt: number,
    status: 'accepted' | 'running' | 'finished' | 'failed',
    result?: unknown,
    error?: unknown,
  ): Promise<ProgressOutcome> {
    const code = await this.redis.advanceJob(
      this.keys.job(jobId),
      this.keys.jobIndexesOf(jobId).failed,
      attempt,
      status,
      Date.now(),
      result === undefined ? '' : JSON.stringify(result),
      error === undefined || error === null ? '' : JSON.stringify(error),
      nodeId,
      JOB_INDEX_CAP,
      this.keys.jobEventsOf(jobId),
      jobId,
    );
    return code === 1 ? 'applied' : code === 0 ? 'duplicate' : 'stale';
  }
}

/** `PROCESSING_ERROR` "DUPLICATE_JOB_ID: …": the lingua client refusing a second copy of a job. */
function isDuplicateDelivery(error: unknown): boolean {
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' && message.startsWith('DUPLICATE_JOB_ID');
}
