import { SwitchboardError } from '../../shared/errors.ts';

/** What a node's WebSocket may do (services/gateway/node-socket.ts), and the codes it is closed with. */

export interface SocketLimits {
  maxMessageBytes: number;
  /** Sustained frames/s; bursts up to 4x. */
  rate: number;
  /** Frames accepted but not yet handled, per socket. */
  maxQueued: number;
  /** A socket not registered within this is closed with 4408. */
  registerTimeoutMs: number;
  /** How long a node_register may wait for an in-flight slot before it is shed (0: not at all). */
  registerWaitMs: number;
}

export const CLOSE_TOO_BIG = 1009;
export const CLOSE_FLOODING = 4429;
export const CLOSE_GOING_AWAY = 1001;
/** The join token may not take the node id it asked for: reconnect and try again later. */
export const CLOSE_REFUSED = 4403;
/** An operator revoked the node's credentials. */
export const CLOSE_REVOKED = 4401;
export const CLOSE_REGISTER_TIMEOUT = 4408;
/**
 * A socket without a node whose node_register was shed (RATE_LIMITED: the gateway at
 * capacity) or failed for want of Redis (SCHEDULER_DEPENDENCY_DOWN): reconnect and register
 * later (RFC 6455 "Try Again Later"). The lingua client ignores error frames but reconnects on
 * a close, 5 s later: a shed node comes back instead of waiting for SB_WS_REGISTER_TIMEOUT_MS.
 */
export const CLOSE_TRY_AGAIN = 1013;
/** The registration failures a socket without a node is closed with CLOSE_TRY_AGAIN for. */
export const TRY_AGAIN_CODES: ReadonlySet<string> = new Set(['RATE_LIMITED', 'SCHEDULER_DEPENDENCY_DOWN']);
/** A socket whose registration is in flight when SB_WS_REGISTER_TIMEOUT_MS passes: looked at again after this. */
export const REGISTER_RECHECK_MS = 1000;
export const CLOSE_NOT_REGISTERED = 4404;
/**
 * A registered socket whose node record is gone (Redis came back without its data) and that
 * did not register again within this is closed with 4404: an agent that ignores `error` frames
 * (the lingua client does) reconnects and registers, instead of heartbeating unseen forever.
 */
export const REREGISTER_GRACE_MS = 2000;

/** Why a received frame of `size` bytes is refused before its turn (null: queued), and whether the socket is closed (1009). */
export function frameRefusal(
  size: number,
  isBinary: boolean,
  limits: SocketLimits,
): { error: SwitchboardError; close: boolean } | null {
  if (size > limits.maxMessageBytes) {
    const text = `frame of ${size} bytes exceeds the limit of ${limits.maxMessageBytes} (SB_MAX_MESSAGE_BYTES)`;
    return { error: new SwitchboardError('INVALID_MESSAGE', text), close: true };
  }
  if (!isBinary) return null;
  const text = 'expected a JSON text frame, got a binary frame';
  return { error: new SwitchboardError('INVALID_MESSAGE', text), close: false };
}
