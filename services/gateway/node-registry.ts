import { HEARTBEAT_CODE, heartbeatArgs, type HeartbeatReply } from '../../shared/lua-scripts.ts';
import type { KeyBuilder, ShardKeys } from '../../shared/keys.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import type { Logger } from '../../shared/logger.ts';
import { failSpan, SpanKind, tracer, tracingEnabled } from '../../shared/telemetry.ts';

/** Arguments of one registration, already validated and canonicalised. */
export interface RegistrationWrite {
  nodeId: string;
  hasGpu: boolean;
  maxJobs: number;
  acceptPublic: boolean;
  agentVersion: string;
  platform: string;
  parts: { static: Part; svc: Part; lang: Part; models: Part };
}

/**
 * What proves the registrant is the node: `node` (its own token or its socket, or auth off),
 * or the join token under an SB_JOIN_REREGISTER policy; and the transport that holds it.
 */
export interface RegistrationProof {
  by: 'node' | 'offline' | 'refuse';
  conn: 'ws' | 'http';
}

export interface HeartbeatWrite {
  nodeId: string;
  timestamp: number;
  cpu: number;
  gpu: number | null;
  gpuMem: number | null;
  mem: number;
  running: number;
  anyReady: boolean;
  svc: Part;
  lang: Part | null;
  models: Part | null;
  /** The parts are what this gateway last sent for the node: try without the blobs first. */
  cached: boolean;
}

interface Part {
  digest: string;
  blob: string;
}

export interface HeartbeatPolicy {
  requireGpu: boolean;
  loadChangeThreshold: number;
  snapshotMaxAgeMs: number;
  unhealthyHeartbeats: number;
  /** SB_HEARTBEAT_REORDER_MS: how far behind the last timestamp a heartbeat is merely reordered */
  reorderWindowMs: number;
}

/**
 * `applied`; `clock_jump`: applied although its timestamp was behind the last one by more than
 * the reorder window (the node's clock went back); `stale`: reordered in flight, only liveness
 * refreshed. The kind is the `outcome` label of sb_heartbeats_total.
 */
export type HeartbeatOutcome =
  | { kind: 'applied' | 'clock_jump'; status: string; capabilityChanged: boolean }
  | { kind: 'stale'; status: string }
  | { kind: 'not_registered' };

/**
 * The gateway's only door to Redis: each operation is ONE script on the node's shard, then
 * the derived work the script asked for (pool-index on a real capability change, a flush when
 * the shard's dirty set became non-empty).
 */
export class NodeRegistry {
  private readonly log: Logger;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly queues: DerivedWorkQueues,
    private readonly policy: HeartbeatPolicy,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'node-registry' });
  }

  /**
   * Returns null when `generatedId` is set and the id already exists, `refused` when `proof`
   * is a join-token policy and the id is held (registerNode-5.lua); nothing written then.
   */
  async register(
    w: RegistrationWrite,
    generatedId = false,
    proof: RegistrationProof = { by: 'node', conn: 'ws' },
  ): Promise<{ epoch: number; isNew: boolean } | 'refused' | null> {
    const k = this.keys.forNode(w.nodeId);
    const p = w.parts;
    const [epoch, capChanged, dirtyWasEmpty, isNew] = await this.redis.registerNode(
      k.node(w.nodeId),
      k.nodes,
      k.live,
      k.offline,
      k.dirty,
      w.nodeId,
      Date.now(),
      w.hasGpu ? 1 : 0,
      w.maxJobs,
      w.acceptPublic ? 1 : 0,
      w.agentVersion,
      w.platform,
      p.static.digest,
      p.static.blob,
      p.svc.digest,
      p.svc.blob,
      p.lang.digest,
      p.lang.blob,
      p.models.digest,
      p.models.blob,
      generatedId ? 1 : 0,
      proof.by === 'node' ? '' : proof.by,
      proof.conn,
    );
    if (epoch === -1) return null;
    if (epoch === -2) return 'refused';
    await this.followUp(w.nodeId, k.shard, capChanged === 1, dirtyWasEmpty === 1);
    return { epoch, isNew: isNew === 1 };
  }

  /** A gateway shutting down handed the node's socket over (epoch `epoch`): nothing holds it now. */
  async connectionHandedOver(nodeId: string, epoch: number): Promise<void> {
    await this.redis.releaseConnection(this.keys.forNode(nodeId).node(nodeId), epoch);
  }

  /**
   * One `heartbeat` span per write when tracing is on; not made active, so the script's Redis
   * call and the follow-up enqueue add no spans of their own to this hot path.
   */
  async heartbeat(w: HeartbeatWrite): Promise<HeartbeatOutcome> {
    if (!tracingEnabled()) return this.writeHeartbeat(w);
    const span = tracer.startSpan('heartbeat', {
      attributes: { 'sb.node_id': w.nodeId },
      kind: SpanKind.CONSUMER,
    });
    try {
      const outcome = await this.writeHeartbeat(w);
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

  private async writeHeartbeat(w: HeartbeatWrite): Promise<HeartbeatOutcome> {
    const k = this.keys.forNode(w.nodeId);
    let reply = await this.recordHeartbeat(k, w, !w.cached);
    // 2: Redis holds other digests than this gateway last sent (another replica wrote since)
    if (reply[0] === HEARTBEAT_CODE.sendBlobs) reply = await this.recordHeartbeat(k, w, true);
    const [code, status, capChanged, dirtyWasEmpty] = reply;
    if (code === HEARTBEAT_CODE.notRegistered) return { kind: 'not_registered' };
    if (code === HEARTBEAT_CODE.stale) return { kind: 'stale', status };
    await this.followUp(w.nodeId, k.shard, capChanged === 1, dirtyWasEmpty === 1);
    const kind = code === HEARTBEAT_CODE.clockJump ? 'clock_jump' : 'applied';
    return { kind, status, capabilityChanged: capChanged === 1 };
  }

  /**
   * One EVALSHA per heartbeat. Measured (bench/README.md): batching these into one pipeline
   * per event-loop turn gave no throughput and a worse p99 (its large writes churn the old
   * generation), so each call goes out on its own.
   */
  private recordHeartbeat(k: ShardKeys, w: HeartbeatWrite, withBlobs: boolean): Promise<HeartbeatReply> {
    const p = this.policy;
    const blob = (part: Part | null) => (part && withBlobs ? part.blob : '');
    return this.redis.recordHeartbeat(
      k.node(w.nodeId),
      k.live,
      k.offline,
      k.dirty,
      k.published,
      ...heartbeatArgs({
        ...w,
        nowMs: Date.now(),
        requireGpu: p.requireGpu,
        svc: { digest: w.svc.digest, blob: blob(w.svc) },
        lang: w.lang && { digest: w.lang.digest, blob: blob(w.lang) },
        models: w.models && { digest: w.models.digest, blob: blob(w.models) },
        loadChangeThreshold: p.loadChangeThreshold,
        snapshotMaxAgeMs: p.snapshotMaxAgeMs,
        unhealthyHeartbeats: p.unhealthyHeartbeats,
        reorderWindowMs: p.reorderWindowMs,
      }),
    );
  }

  /** Marks the node offline if `epoch` is still its current connection. */
  async connectionClosed(nodeId: string, epoch: number): Promise<boolean> {
    const k = this.keys.forNode(nodeId);
    const [code, dirtyWasEmpty] = await this.redis.markOffline(
      k.node(nodeId),
      k.live,
      k.offline,
      k.dirty,
      nodeId,
      epoch,
      Date.now(),
      '',
    );
    // an offline node leaves its pools (the pool index job)
    await this.followUp(nodeId, k.shard, code === 1, dirtyWasEmpty === 1);
    return code === 1;
  }

  async recordError(
    nodeId: string,
    error: { code: string; message: string; details?: unknown },
  ): Promise<boolean> {
    const k = this.keys.forNode(nodeId);
    return (await this.redis.recordNodeError(k.node(nodeId), JSON.stringify(error), Date.now())) === 1;
  }

  private async followUp(nodeId: string, shard: number, capabilityChanged: boolean, dirtyWasEmpty: boolean) {
    const work: Promise<void>[] = [];
    if (capabilityChanged) work.push(this.queues.requestPoolIndex(nodeId, shard));
    if (dirtyWasEmpty) work.push(this.queues.requestFlush(shard));
    if (work.length === 0) return;
    this.log.debug({ nodeId, shard, capabilityChanged, dirtyWasEmpty }, 'enqueue derived work');
    await Promise.all(work);
  }
}
