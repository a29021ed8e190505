import type { Logger } from '../../shared/logger.ts';
import type { HeartbeatCall } from '../../shared/store/heartbeat-call.ts';
import {
  type HeartbeatOutcome,
  type HeartbeatWrite,
  type NodeShardStore,
  type RegistrationProof,
  type RegistrationWrite,
} from '../../shared/store/node-shard.ts';
import { failSpan, SpanKind, tracer, tracingEnabled } from '../../shared/telemetry.ts';

export type {
  HeartbeatOutcome,
  HeartbeatPolicy,
  HeartbeatWrite,
  RegistrationProof,
  RegistrationWrite,
} from '../../shared/store/node-shard.ts';

/**
 * The gateway's door to the node shard: each operation is ONE script through the typed store
 * (shared/store/node-shard.ts, which also enqueues the derived work the script asked for),
 * with a tracing span around heartbeats when tracing is on.
 */
export class NodeRegistry {
  constructor(
    private readonly store: NodeShardStore,
    readonly log: Logger,
  ) {}

  /**
   * Returns null when `generatedId` is set and the id already exists, `refused` when `proof`
   * is a join-token policy and the id is held (registerNode-6.lua); nothing written then.
   */
  async register(
    w: RegistrationWrite,
    generatedId = false,
    proof: RegistrationProof = { by: 'node', conn: 'ws' },
  ): Promise<{ epoch: number; isNew: boolean } | 'refused' | null> {
    const result = await this.store.register(w, generatedId, proof);
    if (result.kind === 'id_taken') return null;
    if (result.kind === 'refused') return 'refused';
    return { epoch: result.epoch, isNew: result.isNew };
  }

  /** A gateway shutting down handed the node's socket over (epoch `epoch`): nothing holds it now. */
  async connectionHandedOver(nodeId: string, epoch: number): Promise<void> {
    await this.store.releaseConnection(nodeId, epoch);
  }

  /**
   * One `heartbeat` span per write when tracing is on; not made active, so the script's Redis
   * call and the follow-up enqueue add no spans of their own to this hot path.
   */
  heartbeat(w: HeartbeatWrite): Promise<HeartbeatOutcome> {
    if (!tracingEnabled()) return this.store.heartbeat(w);
    return this.tracedHeartbeat(w);
  }

  /** A node socket's reusable heartbeat (shared/store/heartbeat-call.ts). */
  heartbeatCall(done: HeartbeatCall['done'], failed: HeartbeatCall['failed']): HeartbeatCall {
    return this.store.heartbeatCall(done, failed);
  }

  /** heartbeat(call.write), answered through the call; traced as `heartbeat` does. */
  sendHeartbeat(call: HeartbeatCall): void {
    if (!tracingEnabled()) this.store.sendHeartbeat(call);
    else this.tracedHeartbeat(call.write).then(call.outcome, call.failed);
  }

  /** A node message enters here: kind CONSUMER. */
  private async tracedHeartbeat(w: HeartbeatWrite): Promise<HeartbeatOutcome> {
    const span = tracer.startSpan('heartbeat', {
      attributes: { 'sb.node_id': w.nodeId },
      kind: SpanKind.CONSUMER,
    });
    try {
      const outcome = await this.store.heartbeat(w);
      span.setAttribute('sb.outcome', outcome.kind);
      if (outcome.kind !== 'not_registered') span.setAttribute('sb.status', outcome.status);
      if (outcome.kind === 'applied' || outcome.kind === 'clock_jump')
        span.setAttribute('sb.capability_changed', outcome.capabilityChanged);
      return outcome;
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Marks the node offline if `epoch` is still its current connection. */
  connectionClosed(nodeId: string, epoch: number): Promise<boolean> {
    return this.store.markOffline(nodeId, epoch);
  }

  recordError(nodeId: string, error: { code: string; message: string; details?: unknown }): Promise<boolean> {
    return this.store.recordNodeError(nodeId, error);
  }
}
