/** What a node's WebSocket may do (services/gateway/node-socket.ts), and the codes it is closed with. */

export interface SocketLimits {
  maxMessageBytes: number;
  /** Sustained frames/s; bursts up to 4x. */
  rate: number;
  /** Frames accepted but not yet handled, per socket. */
  maxQueued: number;
  /** A socket not registered within this is closed with 4408. */
  registerTimeoutMs: number;
}

export const CLOSE_TOO_BIG = 1009;
export const CLOSE_FLOODING = 4429;
export const CLOSE_GOING_AWAY = 1001;
/** The join token may not take the node id it asked for: reconnect and try again later. */
export const CLOSE_REFUSED = 4403;
/** An operator revoked the node's credentials. */
export const CLOSE_REVOKED = 4401;
export const CLOSE_REGISTER_TIMEOUT = 4408;
export const CLOSE_NOT_REGISTERED = 4404;
/**
 * A registered socket whose node record is gone (Redis came back without its data) and that
 * did not register again within this is closed with 4404: an agent that ignores `error` frames
 * (the lingua client does) reconnects and registers, instead of heartbeating unseen forever.
 */
export const REREGISTER_GRACE_MS = 2000;
