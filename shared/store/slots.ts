import type { Env } from '../config.ts';
import type { KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';

/**
 * The node shard's slot scripts (`{p:s<k>}`): a reservation on a node's LIVE record
 * (reserveSlot), recovery's fence, the node's ack (ackJob) and release (releaseJob) of its
 * attempt, and the worker's expiry of a slot past its deadline (expireSlot). The one place that
 * builds their keys, packs their arguments and names their return codes; it also does the "dirty
 * set was empty → request a flush" follow-up. The scripts share the rule for when a slot change
 * re-publishes the node (it filled or freed the node) through lua/includes/slot-load.lua.
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

/** ackJob-6.lua: 1 acked (the reservation is a running job now), 2 already running, -1 no such reservation. */
export type AckOutcome = 'acked' | 'already_running' | 'stale';

/** What a slot is while it is held: a reservation (not acked yet) or a running job. */
export type SlotKind = 'reservation' | 'running';

export interface SlotOptions {
  /** SB_ACK_TIMEOUT_MS: a reservation not acked within this expires */
  ackTimeoutMs: number;
  /** SB_NODE_TTL_MS: a node silent for longer is not live */
  nodeTtlMs: number;
  /** SB_INBOX_LEN: approximate cap of the inbox and the assignment feed */
  inboxLength: number;
}

/** The slot options from the environment (every service reads the same ones). */
export function slotOptions(
  env: Pick<Env, 'SB_ACK_TIMEOUT_MS' | 'SB_NODE_TTL_MS' | 'SB_INBOX_LEN'>,
): SlotOptions {
  return {
    ackTimeoutMs: env.SB_ACK_TIMEOUT_MS,
    nodeTtlMs: env.SB_NODE_TTL_MS,
    inboxLength: env.SB_INBOX_LEN,
  };
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

  /**
   * ackJob-6.lua: the node accepted attempt `attemptId`; its reservation becomes a running job
   * whose deadline is now + `timeoutMs`. Idempotent: a repeat is `already_running`.
   */
  async ack(nodeId: string, jobId: string, attemptId: number, timeoutMs: number): Promise<AckOutcome> {
    const [code, dirtyWasEmpty] = await this.redis.ackJob(
      ...this.keys.slotKeys(nodeId, jobId),
      nodeId,
      jobId,
      attemptId,
      Date.now(),
      timeoutMs,
    );
    if (code === -1) return 'stale';
    if (dirtyWasEmpty === 1) await this.flushes.requestFlush(this.keys.shardOf(nodeId));
    return code === 2 ? 'already_running' : 'acked';
  }

  /**
   * releaseJob-6.lua: whatever `nodeId` holds for attempt `attemptId` of the job (a reservation
   * or a running job) is freed; true when something was.
   */
  async release(nodeId: string, jobId: string, attemptId: number): Promise<boolean> {
    const [code, dirtyWasEmpty] = await this.redis.releaseJob(
      ...this.keys.slotKeys(nodeId, jobId),
      nodeId,
      jobId,
      attemptId,
    );
    if (dirtyWasEmpty === 1) await this.flushes.requestFlush(this.keys.shardOf(nodeId));
    return code !== 0;
  }

  /**
   * expireSlot-7.lua: the slot `member` of `kind` (as in the shard's `:resv` / `:run` sets) is
   * past its deadline: freed, and `cancelFrame` (a job_cancel) sent to the node through its inbox
   * and the assignment feed (capped at about `streamCap`). False: the node acked or finished first.
   */
  async expire(
    nodeId: string,
    jobId: string,
    kind: SlotKind,
    member: string,
    cancelFrame: string,
    streamCap: number,
  ): Promise<boolean> {
    const k = this.keys.forNode(nodeId);
    const [code, dirtyWasEmpty] = await this.redis.expireSlot(
      ...this.keys.slotKeys(nodeId, jobId),
      k.assignments,
      kind,
      member,
      nodeId,
      cancelFrame,
      streamCap,
    );
    if (code !== 1) return false;
    if (dirtyWasEmpty === 1) await this.flushes.requestFlush(k.shard);
    return true;
  }

  /**
   * The deadline (ms) of the slot attempt `attemptId` of the job holds on `nodeId` — its
   * reservation's expiry or its running job's deadline — or null when the node's shard holds none.
   */
  async deadline(nodeId: string, jobId: string, attemptId: number): Promise<number | null> {
    const k = this.keys.forNode(nodeId);
    const runMember = `${jobId}|${nodeId}|${attemptId}`;
    const running = await this.redis.zscore(k.running, runMember);
    if (running !== null) return Number(running);
    const held = await this.redis.get(k.reservation(jobId));
    if (held === null || !held.startsWith(`${nodeId}|${attemptId}|`)) {
      // acked meanwhile (the reservation became a running job between the two reads)?
      const acked = await this.redis.zscore(k.running, runMember);
      return acked === null ? null : Number(acked);
    }
    const expiry = await this.redis.zscore(k.reservations, `${jobId}|${held}`);
    return expiry === null ? null : Number(expiry);
  }

  /** Best effort: the liveness tick requests a flush for any dirty set left without one. */
  private requestFlush(shard: number): void {
    void this.flushes.requestFlush(shard).catch(() => undefined);
  }
}
