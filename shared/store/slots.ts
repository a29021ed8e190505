import type { KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';

/**
 * The node shard's slot scripts as the placement sees them (`{p:s<k>}`): a reservation on a
 * node's LIVE record and recovery's fence. The one place that builds their keys, packs their
 * arguments and names their return codes; it also does the "dirty set was empty → request a
 * flush" follow-up. (ackJob / releaseJob / expireSlot keep their callers' shapes; they share
 * the dirty rule through lua/includes/slot-load.lua.)
 */

/** reserveSlot-7.lua's codes, by name. */
const RESERVE_CODES = {
  1: 'reserved',
  2: 'already_reserved',
  [-1]: 'node_gone',
  [-2]: 'not_ready',
  [-3]: 'draining',
  [-4]: 'not_live',
  [-5]: 'at_capacity',
  [-6]: 'fenced',
} as const;

export type ReserveOutcome = (typeof RESERVE_CODES)[keyof typeof RESERVE_CODES];

export interface ReserveRequest {
  nodeId: string;
  jobId: string;
  attemptId: number;
  /** the job_assign frame (JSON) for the inbox and the assignment feed */
  frame: string;
  /** the placement's claim token (JobShardStore.claim); '' for a failover attempt */
  claimToken: string;
}

export interface ReserveResult {
  outcome: ReserveOutcome | `code ${number}`;
  /** true when the slot is the job's now (reserved, or already reserved by an earlier call) */
  held: boolean;
  /** the node's live load as the script saw it (after the reservation when it took one) */
  running: number;
  reserved: number;
  max: number;
  /** Date.now() when asked */
  at: number;
}

export interface SlotOptions {
  /** SB_ACK_TIMEOUT_MS: a reservation not acked within this expires */
  ackTimeoutMs: number;
  /** SB_NODE_TTL_MS: a node silent for longer is not live */
  nodeTtlMs: number;
  /** SB_INBOX_LEN: approximate cap of the inbox and the assignment feed */
  inboxLength: number;
}

/** Whoever runs snapshot flushes (DerivedWorkQueues). */
export interface FlushRequester {
  requestFlush(shard: number): Promise<unknown>;
}

export class SlotStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly options: SlotOptions,
    private readonly flushes: FlushRequester,
  ) {}

  /**
   * reserveSlot-7.lua: re-checks the node's live record, takes a slot and hands the node the
   * assignment (inbox and feed), atomically; idempotent per job and attempt.
   */
  async reserve(r: ReserveRequest): Promise<ReserveResult> {
    const k = this.keys.forNode(r.nodeId);
    const at = Date.now();
    const [code, running, reserved, max, dirtyWasEmpty] = await this.redis.reserveSlot(
      k.node(r.nodeId),
      k.live,
      k.reservation(r.jobId),
      k.reservations,
      k.inbox(r.nodeId),
      k.dirty,
      k.assignments,
      r.nodeId,
      r.jobId,
      r.attemptId,
      at,
      this.options.ackTimeoutMs,
      this.options.nodeTtlMs,
      r.frame,
      this.options.inboxLength,
      r.claimToken,
    );
    if (dirtyWasEmpty === 1) this.requestFlush(k.shard);
    const outcome = RESERVE_CODES[code as keyof typeof RESERVE_CODES] ?? (`code ${code}` as const);
    return { outcome, held: code === 1 || code === 2, running, reserved, max, at };
  }

  /**
   * fenceReservation-2.lua, recovery's question about attempt 1 of an unconfirmed placement on
   * `nodeId`: `held` (reserved, or acked already) or `fenced` (no slot, and no reservation for
   * this claim can be taken any more: the answer is final).
   */
  async fence(nodeId: string, jobId: string, claimToken: string, ttlMs: number): Promise<'held' | 'fenced'> {
    const k = this.keys.forNode(nodeId);
    const held = await this.redis.fenceReservation(
      k.reservation(jobId),
      k.running,
      nodeId,
      jobId,
      claimToken,
      ttlMs,
    );
    return held === 1 ? 'held' : 'fenced';
  }

  /** Whether attempt `attemptId` of the job holds a reservation on `nodeId` now (read only). */
  async isReserved(nodeId: string, jobId: string, attemptId: number): Promise<boolean> {
    const held = await this.redis.get(this.keys.forNode(nodeId).reservation(jobId));
    return held?.startsWith(`${nodeId}|${attemptId}|`) === true;
  }

  /** Best effort: the liveness tick requests a flush for any dirty set left without one. */
  private requestFlush(shard: number): void {
    void this.flushes.requestFlush(shard).catch(() => undefined);
  }
}
