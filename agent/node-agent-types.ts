import type { AgentLog } from './agent-log.ts';
import type { ConnectionStats } from './gateway-connection.ts';
import type { JobHandler, JobStats } from './job-runner.ts';
import type { HeartbeatParts, JobAssign, JobCancel, NodeControl, RegistrationBody } from './protocol.ts';
import type { Timers } from './timers.ts';

/** Options, state, statistics and events of a `NodeAgent` (node-agent.ts). */

export interface NodeAgentOptions {
  /** `ws://host:port/ws/node` of one or more gateways; each (re)connect moves to the next. */
  gatewayUrls: string[];
  /**
   * The cluster join token (omit when the gateway runs with SB_AUTH=off). After the first ack
   * the agent presents its node token instead, and falls back to this one if that is refused.
   */
  token?: string;
  /** The `node_register` body without `type`; a function is called again for every registration. */
  registration: RegistrationBody | (() => RegistrationBody);
  /** Load and capabilities for each heartbeat (default: host CPU and memory, see system-usage.ts). */
  heartbeat?: () => HeartbeatParts | Promise<HeartbeatParts>;
  /** Overrides the `heartbeat_interval_ms` of the register ack. */
  heartbeatIntervalMs?: number;
  /** Spread of each heartbeat interval, as a fraction (default 0.1 = ±10%). */
  jitter?: number;
  /**
   * Draw the first interval after each ack uniformly from (0, interval] (default false), so
   * many agents that register at once (a fleet starting, every node of a gateway that went
   * away) heartbeat spread over a whole interval instead of in a burst.
   */
  spreadFirstInterval?: boolean;
  /** Reconnect backoff: exponential with full jitter (defaults 250 ms, 10 s). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Runs assigned jobs; without one every `job_assign` is declined (not acked). */
  handler?: JobHandler;
  log?: AgentLog;
  /** Share one `TimerQueue` between many agents in one process (the fleet simulator does). */
  timers?: Timers;
  /** Largest frame the gateway accepts (SB_MAX_MESSAGE_BYTES, default 262144); a bigger result becomes a failure. */
  maxMessageBytes?: number;
  /** WebSocket opening handshake timeout (default 10 s). */
  connectTimeoutMs?: number;
  /** No register ack within this long: drop the socket and reconnect (default 10 s). */
  registerTimeoutMs?: number;
  /** How long `stop()` waits for running jobs before aborting them (default 30 s). */
  shutdownGraceMs?: number;
  /** Frames kept while not registered (job frames only; default 1000). */
  maxQueuedFrames?: number;
  random?: () => number;
}

/** `connecting` covers the backoff before a reconnect too. */
export type ConnectionPhase = 'disconnected' | 'connecting' | 'registering' | 'registered';
export type Lifecycle = 'idle' | 'running' | 'stopping' | 'stopped';

export interface AgentStats extends ConnectionStats {
  /** Register acks received (the first registration and every re-registration). */
  registrations: number;
  heartbeats: number;
  /** Job frames dropped because the queue for a disconnected agent was full. */
  framesDropped: number;
  /** `error` frames by code. */
  errors: Record<string, number>;
  jobs: JobStats;
}

/** Events of a `NodeAgent` (it never emits `error`). */
export type NodeAgentEvents = {
  connected: [{ url: string }];
  registered: [{ nodeId: string; url: string; status: string; heartbeatIntervalMs: number; again: boolean }];
  heartbeat: [{ timestamp: number; runningJobs: number }];
  disconnected: [{ url: string; code: number; reason: string }];
  gateway_error: [{ code: string; message: string }];
  job_assign: [JobAssign, 'accepted' | 'duplicate' | 'declined'];
  job_cancel: [JobCancel];
  /** A `job_result` frame, as it is handed to the socket (or queued for the next registration). */
  job_result: [Record<string, unknown>];
  control: [NodeControl];
  stopped: [];
};
