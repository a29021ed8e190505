import type { ShardKeys } from '../keys.ts';
import type { HeartbeatReply } from '../lua-scripts.ts';
import type { ReplyValue } from './heartbeat-connection.ts';
import type { HeartbeatOutcome, HeartbeatWrite } from './node-shard.ts';

/** recordHeartbeat's reply codes (lua/recordHeartbeat-7.lua). */
export const HEARTBEAT_CODE = {
  notRegistered: -1,
  /** reordered in flight: only liveness refreshed */
  stale: 0,
  applied: 1,
  /** a changed capability part came without its blob: call again with blobs */
  sendBlobs: 2,
  /** applied although older than the stored timestamp by more than the reorder window */
  clockJump: 3,
} as const;

/** The store's side of a call (NodeShardStore). */
export interface HeartbeatReplies {
  /** The outcome of a reply that asks for more (blobs, derived work). */
  settle(call: HeartbeatCall, reply: HeartbeatReply): Promise<HeartbeatOutcome>;
  /** The promise path (NOSCRIPT: through ioredis, which loads the script). */
  heartbeat(h: HeartbeatWrite): Promise<HeartbeatOutcome>;
}

/**
 * One node socket's heartbeats, one in flight at a time (NodeShardStore.sendHeartbeat): the
 * caller fills `write` in place and sends; the outcome's kind comes to `done`, an error to
 * `failed`. Made once per socket, so a heartbeat the heartbeats' own connection carries
 * (heartbeat-connection.ts) and whose reply asks for nothing more costs no promise, closure,
 * write or outcome object: ~0.8 KB less per heartbeat than NodeShardStore.heartbeat's
 * promises (bench/alloc.ts "WHOLE GATEWAY"). Anything else (no template, ioredis, blobs asked
 * for, derived work, NOSCRIPT) goes through the promise path and ends in the same callbacks.
 *
 * `write` is read until `done` or `failed` is called: the caller must not change it before.
 * Exactly one of them is called per send, possibly from the connection's read loop: they must
 * not throw (as a promise's handlers must not: either ends the process).
 */
export class HeartbeatCall {
  readonly write: HeartbeatWrite;
  /** The shard keys of the heartbeat in flight (set by the store). */
  keys: ShardKeys | null = null;

  constructor(
    private readonly store: HeartbeatReplies,
    readonly done: (kind: HeartbeatOutcome['kind']) => void,
    readonly failed: (err: unknown) => void,
  ) {
    this.write = {
      nodeId: '',
      timestamp: 0.5, // double fields from the start: updated in place
      cpu: 0,
      gpu: null,
      gpuMem: null,
      mem: 0,
      running: 0,
      anyReady: false,
      svc: { digest: '', blob: '' },
      lang: null,
      models: null,
      cached: true,
    };
  }

  /** The reply of the call's command: the outcome, without a promise unless work follows. */
  readonly onReply = (value: ReplyValue): void => {
    const reply = value as HeartbeatReply;
    const code = reply[0];
    if (code === HEARTBEAT_CODE.notRegistered) this.done('not_registered');
    else if (code === HEARTBEAT_CODE.stale) this.done('stale');
    else if (code !== HEARTBEAT_CODE.sendBlobs && reply[2] !== 1 && reply[3] !== 1)
      this.done(code === HEARTBEAT_CODE.clockJump ? 'clock_jump' : 'applied');
    else this.store.settle(this, reply).then(this.outcome, this.failed);
  };

  readonly onError = (err: Error): void => {
    if (err.message.startsWith('NOSCRIPT')) this.store.heartbeat(this.write).then(this.outcome, this.failed);
    else this.failed(err);
  };
  /** The promise path's outcome. */
  readonly outcome = (o: HeartbeatOutcome): void => this.done(o.kind);
}
