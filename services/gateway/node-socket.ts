import type { RawData, WebSocket } from 'ws';
import { SwitchboardError, toSwitchboardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { NodeFrameType } from '../../shared/protocol/node-messages.ts';
import { parseNodeFrame } from '../../shared/protocol/node-frame.ts';
import { errorFrame } from '../../shared/protocol/outbound-frames.ts';
import type { AssignmentFeed } from './assignment-feed.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import { DeliveredJobs } from './delivered-jobs.ts';
import { readTextFrames } from './frame-reader.ts';
import { HeartbeatMemo } from './heartbeat-memo.ts';
import { FrameRate, type InflightLimiter } from './load-shedding.ts';
import type { Principal } from './node-auth.ts';
import { recordRegistrationFailure } from './registration-refusals.ts';
import { notRegistered, type NodeService } from './node-service.ts';
import type { HeartbeatOutcome } from './node-registry.ts';
import type { HeartbeatCall } from '../../shared/store/heartbeat-call.ts';
import {
  CLOSE_TOO_BIG,
  CLOSE_FLOODING,
  CLOSE_GOING_AWAY,
  CLOSE_REFUSED,
  CLOSE_REVOKED,
  CLOSE_REGISTER_TIMEOUT,
  CLOSE_NOT_REGISTERED,
  CLOSE_TRY_AGAIN,
  REGISTER_RECHECK_MS,
  REREGISTER_GRACE_MS,
  TRY_AGAIN_CODES,
  frameRefusal,
  type SocketLimits,
} from './socket-limits.ts';

/**
 * One node's WebSocket: frames handled strictly in order, one at a time; shed (RATE_LIMITED)
 * beyond the token bucket or the queue bound; closed with 4429 when flooding persists.
 * Remembers the node and connection epoch of its last successful registration.
 */
export class NodeSocket {
  private nodeId: string | null = null;
  private epoch = 0;
  /** The registered node sends job_ack; when not, delivering job_assign accepts the job. */
  private acksJobs = true;
  /** A node_register was received on this socket (refused or not). */
  private registerSeen = false;
  /** A node_register is in flight: the register timeout waits for its outcome. */
  private registering = false;
  /** job_assign frames delivered on this socket to a node that does not ack. */
  private readonly delivered = new DeliveredJobs();
  /** Frames accepted and not yet handled, and when each was received. */
  private readonly queue: RawData[] = [];
  private readonly queuedAt: number[] = [];
  private busy = false;
  private readonly rate: FrameRate;
  /** Set when this replica closes the socket while shutting down: the node is not offline, it moves. */
  private handover = false;
  /** Set while a registered node was answered NOT_REGISTERED (its record is gone). */
  private forgotten: NodeJS.Timeout | undefined;
  /** Resolves once the close has been handled (the offline mark written or skipped). */
  readonly closed: Promise<void>;
  /** Closes a socket that never registers (SB_WS_REGISTER_TIMEOUT_MS). */
  private registerTimer: NodeJS.Timeout | undefined;
  /** Answered the last ping (or sent something) since: see `ping()`. */
  private alive = true;
  /** The node's last accepted heartbeat, for the fast path (heartbeat-memo.ts). */
  private readonly memo = new HeartbeatMemo();
  /** The fast path's heartbeat, one in flight at a time (shared/store/heartbeat-call.ts). */
  private readonly call: HeartbeatCall;

  constructor(
    private readonly ws: WebSocket,
    /** Becomes the node once this socket registers it: a socket proves its own node. */
    private principal: Principal,
    private readonly service: NodeService,
    private readonly feed: AssignmentFeed,
    private readonly inflight: InflightLimiter,
    private readonly limits: SocketLimits,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    /** The peer's address, for the log line of a refused registration. */
    private readonly remoteAddress = '',
  ) {
    this.rate = new FrameRate(limits.rate);
    this.call = service.heartbeatCall(this.fastDone, this.fastFailed);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    // the common text frames without ws's per-frame cost; the others still come as 'message'
    readTextFrames(ws, (payload) => this.onMessage(payload, false));
    this.closed = new Promise((resolve) => ws.on('close', () => void this.onClose().finally(resolve)));
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    ws.on('pong', () => (this.alive = true));
    this.registerTimer = setTimeout(this.registerDue, limits.registerTimeoutMs).unref();
  }

  /**
   * SB_WS_REGISTER_TIMEOUT_MS passed: a socket without a node is closed with 4408, unless its
   * node_register is in flight (thrown away, the client would only redo it): looked at again.
   */
  private readonly registerDue = (): void => {
    if (this.nodeId !== null || this.ws.readyState !== this.ws.OPEN) return;
    if (this.registering) {
      this.registerTimer = setTimeout(this.registerDue, REGISTER_RECHECK_MS).unref();
      return;
    }
    this.metrics.rejected.inc({ reason: 'register_timeout' });
    this.ws.close(CLOSE_REGISTER_TIMEOUT, 'no node_register in time');
  };

  /**
   * Called every SB_WS_PING_INTERVAL_MS: a socket that has neither answered the previous ping
   * nor sent anything since is dead (a peer gone without a close) and is terminated.
   */
  ping(): void {
    if (!this.alive) {
      this.log.debug({ nodeId: this.nodeId }, 'no pong: terminating socket');
      this.ws.terminate();
      return;
    }
    this.alive = false;
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  get registeredNodeId(): string | null {
    return this.nodeId;
  }

  /**
   * Closes with 1001 for a gateway shutdown. The node is NOT marked offline: it reconnects
   * to another replica (a new epoch); if it never does, the reaper marks it offline after
   * SB_NODE_TTL_MS.
   */
  closeForShutdown(): void {
    this.handover = true;
    this.ws.close(CLOSE_GOING_AWAY, 'gateway shutting down');
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.alive = true;
    const at = performance.now();
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    const refused = frameRefusal(size, isBinary, this.limits);
    if (refused) {
      if (refused.close) this.metrics.rejected.inc({ reason: 'too_large' });
      this.sendError(refused.error);
      if (refused.close) this.ws.close(CLOSE_TOO_BIG, 'message too big');
      return;
    }
    if (!this.rate.take(at)) return this.shed('rate', at);
    if (this.queue.length >= this.limits.maxQueued) return this.shed('queue_full', at);
    this.queue.push(data);
    this.queuedAt.push(at);
    if (!this.busy) this.pump();
  }

  private shed(reason: string, now: number): void {
    this.metrics.rejected.inc({ reason });
    if (this.rate.flooding(now)) {
      this.log.warn({ nodeId: this.nodeId }, 'persistent flooding: closing socket');
      this.ws.close(CLOSE_FLOODING, 'rate limit exceeded');
      return;
    }
    this.sendError(new SwitchboardError('RATE_LIMITED', `more than ${this.limits.rate} frames/s; slow down`));
  }

  /**
   * Handles the queued frames in order, one at a time. A fast-path heartbeat (matchHeartbeat) is
   * followed with per-socket callbacks and fields and the socket's reusable call: no promise or
   * closure per frame (bench/alloc.ts "WHOLE GATEWAY").
   */
  private pump(): void {
    this.busy = true;
    for (let data = this.queue.shift(); data !== undefined; data = this.queue.shift()) {
      const at = this.queuedAt.shift()!;
      const nodeId = this.nodeId;
      if (nodeId !== null && Buffer.isBuffer(data) && this.service.matchHeartbeat(data, nodeId, this.memo)) {
        if (!this.inflight.tryAcquire()) {
          this.metrics.rejected.inc({ reason: 'inflight' });
          this.failed(
            new SwitchboardError('RATE_LIMITED', 'gateway at capacity; retry shortly'),
            'node_heartbeat',
            at,
          );
          continue;
        }
        this.fastAt = at;
        this.fastNode = nodeId;
        try {
          // (nothing scanned another frame since matchHeartbeat)
          this.service.sendMatchedHeartbeat(this.principal, nodeId, this.memo, this.call);
        } catch (err) {
          this.inflight.release();
          this.failed(err, 'node_heartbeat', at);
          continue;
        }
        return;
      }
      void this.handle(data, at).then(this.resume);
      return;
    }
    this.busy = false;
  }

  private fastAt = 0;
  private fastNode = '';
  private readonly resume = (): void => this.pump();
  private readonly fastDone = (kind: HeartbeatOutcome['kind']): void => {
    this.inflight.release();
    if (kind === 'not_registered') this.failed(notRegistered(this.fastNode), 'node_heartbeat', this.fastAt);
    else this.observeHeartbeat(this.fastAt, kind);
    this.pump();
  };
  private readonly fastFailed = (err: unknown): void => {
    this.inflight.release();
    this.failed(err, 'node_heartbeat', this.fastAt);
    this.pump();
  };

  /** Any frame but a fast-path heartbeat (see pump). */
  private async handle(data: RawData, receivedAt: number): Promise<void> {
    let type: NodeFrameType | undefined;
    try {
      const frame = parseNodeFrame((data as Buffer).toString('utf8'));
      type = frame.type;
      if (type === 'node_heartbeat' && this.nodeId === null && !this.registerSeen) {
        // the lingua client's reconnect order: a heartbeat, then node_register; the register resumes it
        this.observeHeartbeat(receivedAt, 'before_register');
        return;
      }
      const registration = type === 'node_register';
      if (!(registration ? await this.admitRegistration() : this.inflight.tryAcquire())) {
        this.metrics.rejected.inc({ reason: 'inflight' });
        throw new SwitchboardError('RATE_LIMITED', 'gateway at capacity; retry shortly');
      }
      let outcome: string | undefined;
      try {
        // a socket that left while its registration waited has nothing to register; any other
        // frame it sent before it closed (a job_result) is still handled
        if (!registration || this.ws.readyState === this.ws.OPEN)
          outcome = await this.dispatch(frame.type, frame.body, data);
      } finally {
        if (registration) this.inflight.releaseRegistration();
        else this.inflight.release();
      }
      if (type === 'node_heartbeat') this.observeHeartbeat(receivedAt, outcome ?? 'applied');
    } catch (err) {
      this.failed(err, type, receivedAt);
    }
  }

  /**
   * An in-flight slot for a node_register: at once, or the first one freed within
   * SB_WS_REGISTER_WAIT_MS (a registration storm is worked through in arrival order instead of
   * shed to come back seconds later; the register timeout does not close a socket whose
   * registration waits). Registrations hold at most a quarter of SB_MAX_INFLIGHT.
   */
  private async admitRegistration(): Promise<boolean> {
    this.registering = true;
    try {
      return await this.inflight.acquireRegistration(this.limits.registerWaitMs);
    } finally {
      this.registering = false;
    }
  }

  /** A frame that failed: its error frame, and for a heartbeat its outcome counted. */
  private failed(err: unknown, type: NodeFrameType | undefined, receivedAt: number): void {
    const error = toSwitchboardError(err);
    if (error.code === 'INTERNAL') this.log.error({ err, type }, 'frame failed');
    if (type === 'node_heartbeat') this.observeHeartbeat(receivedAt, error.code);
    this.sendError(error);
    if (error.code === 'NOT_REGISTERED' && this.nodeId !== null) this.recordLost();
    // shed, not absorbed: a client that ignores error frames (lingua) reconnects on the close
    if (type === 'node_register' && this.nodeId === null && TRY_AGAIN_CODES.has(error.code))
      this.ws.close(CLOSE_TRY_AGAIN, 'gateway at capacity: reconnect and register later');
  }

  /** The node registered on this socket, but Redis no longer knows it: see REREGISTER_GRACE_MS. */
  private recordLost(): void {
    if (this.forgotten) return;
    this.forgotten = setTimeout(() => {
      this.log.warn({ nodeId: this.nodeId }, 'node record lost and not registered again: closing 4404');
      this.ws.close(CLOSE_NOT_REGISTERED, 'not registered: reconnect and send node_register');
    }, REREGISTER_GRACE_MS);
    this.forgotten.unref();
  }

  /** Handles one frame; for a heartbeat, answers its outcome (applied, clock_jump, stale). */
  private async dispatch(
    type: NodeFrameType,
    body: Record<string, unknown>,
    raw: RawData,
  ): Promise<string | undefined> {
    if (type === 'node_register') {
      this.registerSeen = true;
      this.registering = true;
      try {
        const { ack, epoch, acksJobs } = await this.service.register(body, this.principal, 'ws');
        if (this.ws.readyState !== this.ws.OPEN) {
          // the socket closed while registering: nothing holds the new epoch
          await this.release(ack.node_id, epoch);
          return;
        }
        if (this.nodeId !== null && this.nodeId !== ack.node_id) this.feed.detach(this.nodeId, this.push);
        this.nodeId = ack.node_id;
        this.epoch = epoch;
        this.acksJobs = acksJobs;
        if (this.principal.kind === 'join') this.principal = { kind: 'node', nodeId: ack.node_id };
        clearTimeout(this.registerTimer);
        clearTimeout(this.forgotten);
        this.forgotten = undefined;
        this.metrics.registrations.inc({ outcome: 'ok' });
        this.send(JSON.stringify(ack));
        // live assignments from now on, then whatever waits unacked (at least once)
        this.feed.attach(ack.node_id, this.push, this.onControl);
        for (const pending of await this.feed.pending(ack.node_id)) this.push(pending);
      } catch (err) {
        const error = toSwitchboardError(err);
        recordRegistrationFailure(this.metrics, this.log, error, body, this.remoteAddress);
        if (error.code === 'UNAUTHORIZED' && this.principal.kind === 'join') {
          // a client that ignores error frames (lingua) retries on reconnect
          this.sendError(error);
          this.ws.close(CLOSE_REFUSED, 'node id held by another connection');
          return;
        }
        throw err;
      } finally {
        this.registering = false;
      }
      return;
    }
    const nodeId = this.nodeId;
    if (nodeId === null)
      throw new SwitchboardError('NOT_REGISTERED', `${type} before node_register on this connection`);
    switch (type) {
      case 'node_heartbeat':
        return (
          await this.service.heartbeat(
            body,
            this.principal,
            nodeId,
            Buffer.isBuffer(raw) ? raw : undefined,
            this.memo,
          )
        ).kind;
      case 'node_error':
        await this.service.nodeError(body, this.principal, nodeId);
        return;
      case 'asr_partial':
        await this.service.asrPartial(body, this.principal, nodeId); // a late one is ignored
        return;
      case 'job_ack':
      case 'job_started':
      case 'job_result':
        await this.service.jobFrame(type, body, this.principal, nodeId); // stale attempts are ignored
        return;
    }
  }

  private observeHeartbeat(receivedAt: number, outcome: string): void {
    this.metrics.countHeartbeat(outcome);
    this.metrics.heartbeatSeconds.record((performance.now() - receivedAt) / 1000);
  }

  /**
   * Sends a frame from the assignment feed or the inbox. For a node that does not ack, the
   * delivery of a job_assign is its acceptance (PROTOCOL.md "Acceptance").
   */
  private readonly push = (frame: string): void => {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const nodeId = this.nodeId;
    const job = this.acksJobs || nodeId === null ? 'send' : this.delivered.first(frame);
    if (job === 'again') return;
    this.ws.send(frame);
    if (job === 'send') return;
    this.service.accept(nodeId!, job.jobId, job.attemptId).catch((err: unknown) => {
      // the reservation then expires after SB_ACK_TIMEOUT_MS and the job fails over
      this.log.warn(
        { nodeId, jobId: job.jobId, err: (err as Error).message },
        'could not accept on delivery',
      );
    });
  };

  /** A control entry of the assignment feed for this node: `revoke` closes the socket. */
  private readonly onControl = (control: string): void => {
    if (control !== 'revoke') return;
    this.log.info({ nodeId: this.nodeId }, 'node credentials revoked: closing its socket');
    this.ws.close(CLOSE_REVOKED, 'credentials revoked');
  };

  private async onClose(): Promise<void> {
    clearTimeout(this.registerTimer);
    clearTimeout(this.forgotten);
    this.queue.length = 0;
    this.queuedAt.length = 0;
    const nodeId = this.nodeId;
    if (nodeId !== null) this.feed.detach(nodeId, this.push);
    if (nodeId !== null) await this.release(nodeId, this.epoch);
  }

  /** The socket holding `epoch` of the node is gone: offline, or handed over (closeForShutdown). */
  private async release(nodeId: string, epoch: number): Promise<void> {
    try {
      if (this.handover) await this.service.connectionHandedOver(nodeId, epoch);
      else await this.service.connectionClosed(nodeId, epoch);
    } catch (err) {
      // The reaper marks the node offline after SB_NODE_TTL_MS anyway.
      this.log.warn({ nodeId, err: (err as Error).message }, 'could not mark node offline on close');
    }
  }

  private sendError(error: SwitchboardError): void {
    this.send(errorFrame(error));
  }

  private send(text: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text);
  }
}
