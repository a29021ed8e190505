import { randomBytes } from 'node:crypto';
import { context, type Attributes } from '@opentelemetry/api';
import { capabilityPart, servicesPart, staticPart } from '../../shared/capability-digest.ts';
import { SwitchboardError } from '../../shared/errors.ts';
import {
  asrPartialSchema,
  jobProgressSchema,
  jobResultSchema,
  nodeErrorSchema,
  nodeHeartbeatCoreSchema,
  nodeHeartbeatSchema,
  nodeRegisterSchema,
} from '../../shared/protocol/node-messages.ts';
import { describeValue } from '../../shared/protocol/json-message.ts';
import { registerAckFrame, type RegisterAck } from '../../shared/protocol/outbound-frames.ts';
import { isHeartbeatCore, type HeartbeatCore } from '../../shared/protocol/heartbeat-core.ts';
import { HeartbeatScan } from '../../shared/protocol/heartbeat-scan.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import { inSpan, parseTraceparent, remoteParent, SpanKind, tracingEnabled } from '../../shared/telemetry.ts';
import { NodeAuthenticator, type Principal } from './node-auth.ts';
import { CapabilityCache, type HeartbeatCapabilities } from './capability-cache.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import type { HeartbeatMemo } from './heartbeat-memo.ts';
import type { JobProgress, ProgressOutcome } from './job-progress.ts';
import type { HeartbeatOutcome, HeartbeatWrite, NodeRegistry } from './node-registry.ts';
import type { HeartbeatCall } from '../../shared/store/heartbeat-call.ts';

export const CAPABILITY_SCHEMA_VERSION = '2.0';
const JOB_SPAN_NAMES = { job_ack: 'job.ack', job_started: 'job.started', job_result: 'job.result' } as const;
const GENERATED_ID_ATTEMPTS = 5;

export interface NodeServiceOptions {
  requireGpu: boolean;
  defaultMaxJobs: number;
  heartbeatIntervalMs: number;
  nodeTtlMs: number;
}

export type { RegisterAck } from '../../shared/protocol/outbound-frames.ts';

/** A registration's answer: the ack, the connection epoch, and whether the node acks jobs. */
export interface Registered {
  ack: RegisterAck;
  epoch: number;
  /** `acks_jobs: true` in node_register; else delivery counts as acceptance. */
  acksJobs: boolean;
}

/**
 * The node protocol's operations, transport-agnostic: validate, authorise, canonicalise,
 * then one registry write. WebSocket and HTTP both call this.
 */
export class NodeService {
  private readonly capabilities = new CapabilityCache();
  /** The scan of the frame in hand (heartbeat-scan.ts): read synchronously, reused. */
  private readonly scan = new HeartbeatScan();

  constructor(
    private readonly registry: NodeRegistry,
    private readonly jobs: JobProgress,
    private readonly options: NodeServiceOptions,
    private readonly auth: NodeAuthenticator,
    /** sb_job_results_total: a result counts once, when it is applied to the current attempt. */
    private readonly jobResults?: Pick<GatewayMetrics['jobResults'], 'inc'>,
    /**
     * The job's placement span (`traceparent` of the job record), read only while tracing and
     * only for a node that echoes `trace_id` alone: its ack/result spans then hang under it.
     */
    private readonly placementTrace?: (jobId: string) => Promise<string | null>,
  ) {}

  /**
   * `principal` proves who registers: a node (its token, its socket) only its own id; the join
   * token a new id, or a known one under SB_JOIN_REREGISTER (README "Credentials").
   */
  async register(body: unknown, principal: Principal, conn: 'ws' | 'http' = 'ws'): Promise<Registered> {
    const reg = parseOrThrow(nodeRegisterSchema, body);
    if (
      reg.capability_schema_version != null &&
      reg.capability_schema_version !== CAPABILITY_SCHEMA_VERSION
    ) {
      throw new SwitchboardError(
        'INVALID_CAPABILITY_SCHEMA',
        `capability_schema_version: expected "${CAPABILITY_SCHEMA_VERSION}", got ${describeValue(reg.capability_schema_version)}`,
      );
    }
    const hasGpu = (reg.hardware.gpus ?? []).length > 0;
    if (this.options.requireGpu && !hasGpu) {
      throw new SwitchboardError(
        'NO_GPU_AVAILABLE',
        'hardware.gpus: this scheduler requires at least one GPU',
      );
    }
    const write = {
      hasGpu,
      maxJobs: reg.max_concurrent_jobs ?? this.options.defaultMaxJobs,
      parts: {
        static: staticPart(reg, this.options.defaultMaxJobs),
        svc: servicesPart(reg.installed_services, reg.capability_by_type),
        lang: capabilityPart(reg.language_capabilities ?? {}),
      },
    };

    const requested = reg.node_id ?? (principal.kind === 'node' ? principal.nodeId : null);
    let nodeId = requested ?? '';
    let result: { epoch: number } | 'refused' | null = null;
    if (requested !== null) {
      if (principal.kind === 'node') NodeAuthenticator.assertMayActFor(principal, requested);
      const by = principal.kind === 'join' ? this.auth.joinPolicy : 'node';
      result = await this.registry.register({ ...write, nodeId }, false, { by, conn });
      if (result === 'refused') throw refusal(nodeId, by);
    } else {
      for (let i = 0; i < GENERATED_ID_ATTEMPTS && result === null; i++) {
        nodeId = `node-${randomBytes(4).toString('hex')}`;
        result = await this.registry.register({ ...write, nodeId }, true, { by: 'node', conn });
      }
      if (result === null) throw new SwitchboardError('INTERNAL', 'could not generate a free node_id');
    }

    const ack = registerAckFrame({
      node_id: nodeId,
      status: 'registering',
      heartbeat_interval_ms: this.options.heartbeatIntervalMs,
      node_ttl_ms: this.options.nodeTtlMs,
    });
    const issued = await this.auth.issue(nodeId);
    if (issued) {
      ack.node_token = issued.token;
      ack.node_token_expires_at = issued.expiresAt;
    }
    return { ack, epoch: (result as { epoch: number }).epoch, acksJobs: reg.acks_jobs === true };
  }

  /**
   * The heartbeat fast path, step 1: true when `frame`'s bytes scan as a heartbeat of
   * `boundNodeId` whose members other than the core fields are byte-identical to those of the
   * node's last heartbeat accepted on this socket (`memo`); no JSON.parse. False: the frame
   * takes the full path (parseFrame, then `heartbeat`), whatever it is, unusual or invalid,
   * and gets the answer (and error message) the full path gives.
   */
  matchHeartbeat(frame: Buffer, boundNodeId: string, memo: HeartbeatMemo): boolean {
    return memo.match(frame, boundNodeId, this.scan);
  }

  /** A node socket's reusable heartbeat for `sendMatchedHeartbeat` (shared/store/heartbeat-call.ts). */
  heartbeatCall(done: HeartbeatCall['done'], failed: HeartbeatCall['failed']): HeartbeatCall {
    return this.registry.heartbeatCall(done, failed);
  }

  /**
   * Step 2, before any other frame is matched: records the heartbeat matchHeartbeat scanned,
   * its write filled into `call` (no object, promise or async wrapper per heartbeat: ~1 KB,
   * bench/alloc.ts "WHOLE GATEWAY"). The outcome's kind comes to `call.done`, `not_registered`
   * included (the caller answers `notRegistered(nodeId)`); an error to `call.failed`, or thrown
   * here when the principal may not act for the node.
   */
  sendMatchedHeartbeat(
    principal: Principal,
    boundNodeId: string,
    memo: HeartbeatMemo,
    call: HeartbeatCall,
  ): void {
    NodeAuthenticator.assertMayActFor(principal, boundNodeId);
    const s = this.scan;
    const caps = memo.caps!;
    const w = call.write;
    w.nodeId = boundNodeId;
    w.timestamp = s.timestamp;
    w.cpu = s.cpu;
    w.gpu = s.gpu;
    w.gpuMem = s.gpuMem;
    w.mem = s.mem;
    w.running = s.running;
    w.anyReady = caps.anyReady;
    w.svc = caps.svc;
    w.lang = caps.lang;
    w.models = caps.models;
    w.cached = true;
    this.registry.sendHeartbeat(call);
  }

  /**
   * Records a heartbeat. `boundNodeId` is the node the WebSocket registered (heartbeats for
   * another id are NODE_ID_MISMATCH); over HTTP it is the id in the URL. `frame` and `memo`
   * (WebSocket): the frame's bytes, remembered once accepted for `matchHeartbeat`.
   */
  async heartbeat(
    body: unknown,
    principal: Principal,
    boundNodeId: string,
    frame?: Buffer,
    memo?: HeartbeatMemo,
  ): Promise<HeartbeatOutcome> {
    NodeAuthenticator.assertMayActFor(principal, boundNodeId);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new SwitchboardError('INVALID_MESSAGE', '(root): expected a JSON object');
    }
    const fields = body as Record<string, unknown>;
    const hit = fields['node_id'] === boundNodeId ? this.capabilities.hit(boundNodeId, fields) : null;
    let core: HeartbeatCore;
    let caps: HeartbeatCapabilities;
    if (hit) {
      // capabilities equal to this node's previous heartbeat's were validated with it; the core
      // fields by hand (zod when that says no: the same answer, or its exact error message)
      core = isHeartbeatCore(fields) ? fields : parseOrThrow(nodeHeartbeatCoreSchema, fields);
      caps = hit;
    } else {
      const hb = parseOrThrow(nodeHeartbeatSchema, fields);
      if (hb.node_id !== boundNodeId) {
        throw new SwitchboardError('NODE_ID_MISMATCH', `node_id: expected ${boundNodeId}, got ${hb.node_id}`);
      }
      core = hb;
      caps = this.capabilities.resolve(boundNodeId, fields, hb);
    }
    if (frame && memo) memo.remember(frame, boundNodeId, caps, this.scan);
    const usage = core.resource_usage;
    return this.write({
      nodeId: boundNodeId,
      timestamp: core.timestamp,
      cpu: usage.cpu_percent,
      gpu: usage.gpu_percent ?? null,
      gpuMem: usage.gpu_mem_percent ?? null,
      mem: usage.mem_percent,
      running: usage.running_jobs,
      anyReady: caps.anyReady,
      svc: caps.svc,
      lang: caps.lang,
      models: caps.models,
      cached: caps.cached,
    });
  }

  private async write(w: HeartbeatWrite): Promise<HeartbeatOutcome> {
    const outcome = await this.registry.heartbeat(w);
    if (outcome.kind === 'not_registered') throw notRegistered(w.nodeId);
    return outcome;
  }

  async connectionClosed(nodeId: string, epoch: number): Promise<boolean> {
    return this.registry.connectionClosed(nodeId, epoch);
  }

  async connectionHandedOver(nodeId: string, epoch: number): Promise<void> {
    await this.registry.connectionHandedOver(nodeId, epoch);
  }

  async nodeError(body: unknown, principal: Principal, boundNodeId: string): Promise<void> {
    const err = parseOrThrow(nodeErrorSchema, body);
    if (err.node_id !== boundNodeId) {
      throw new SwitchboardError('NODE_ID_MISMATCH', `node_id: expected ${boundNodeId}, got ${err.node_id}`);
    }
    NodeAuthenticator.assertMayActFor(principal, err.node_id);
    const recorded = await this.registry.recordError(err.node_id, {
      code: err.code,
      message: err.message,
      details: err.details,
    });
    if (!recorded) throw new SwitchboardError('NOT_REGISTERED', `node ${err.node_id} is not registered`);
    await this.jobs.nodeFault(err.node_id);
  }

  /** asr_partial of the node `boundNodeId`: kept for the job's client, or ignored when stale. */
  async asrPartial(body: unknown, principal: Principal, boundNodeId: string): Promise<ProgressOutcome> {
    NodeAuthenticator.assertMayActFor(principal, boundNodeId);
    const frame = parseOrThrow(asrPartialSchema, body);
    if (frame.node_id !== boundNodeId) {
      throw new SwitchboardError(
        'NODE_ID_MISMATCH',
        `node_id: expected ${boundNodeId}, got ${frame.node_id}`,
      );
    }
    return this.jobs.partial(boundNodeId, frame.job_id, frame.text, frame.is_final === true);
  }

  /** Delivery counts as acceptance for a node that does not ack: the gateway acks for it. */
  accept(nodeId: string, jobId: string, attemptId: number): Promise<ProgressOutcome> {
    return this.jobs.ack(nodeId, jobId, attemptId);
  }

  /**
   * job_ack / job_started / job_result for the node `boundNodeId` (the socket's, or the URL's).
   * A frame for an attempt that is not the job's current one on this node is `stale`: ignored
   * (HTTP answers 409).
   */
  async jobFrame(
    type: 'job_ack' | 'job_started' | 'job_result',
    body: unknown,
    principal: Principal,
    boundNodeId: string,
    jobIdInPath?: string,
  ): Promise<ProgressOutcome> {
    NodeAuthenticator.assertMayActFor(principal, boundNodeId);
    const frame = parseOrThrow(type === 'job_result' ? jobResultSchema : jobProgressSchema, body);
    if (frame.node_id !== boundNodeId) {
      throw new SwitchboardError(
        'NODE_ID_MISMATCH',
        `node_id: expected ${boundNodeId}, got ${frame.node_id}`,
      );
    }
    if (jobIdInPath !== undefined && frame.job_id !== jobIdInPath) {
      throw new SwitchboardError(
        'INVALID_MESSAGE',
        `job_id: expected ${jobIdInPath} (the URL's), got ${frame.job_id}`,
      );
    }
    const attributes: Attributes = {
      'sb.job_id': frame.job_id,
      'sb.attempt': frame.attempt_id,
      'sb.node_id': boundNodeId,
    };
    if (type === 'job_result') attributes['sb.success'] = (frame as { success?: unknown }).success === true;
    // a child of the selector's placement span: the traceparent job_assign carried, echoed by the
    // node; else (trace_id only, as every lingua node) the one the job record keeps
    const parent = tracingEnabled() ? await this.jobParent(frame) : context.active();
    return inSpan(
      JOB_SPAN_NAMES[type],
      attributes,
      async (span) => {
        const outcome = await this.applyJobFrame(type, boundNodeId, frame);
        span.setAttribute('sb.outcome', outcome);
        if (type === 'job_result' && outcome === 'applied')
          this.jobResults?.inc({ status: attributes['sb.success'] === true ? 'finished' : 'failed' });
        return outcome;
      },
      parent,
      SpanKind.CONSUMER,
    );
  }

  private async jobParent(frame: { job_id: string; traceparent?: unknown; trace_id?: unknown }) {
    if (parseTraceparent(frame.traceparent) || typeof frame.trace_id !== 'string' || !this.placementTrace)
      return remoteParent(frame.traceparent, frame.trace_id);
    const placement = await this.placementTrace(frame.job_id).catch(() => null);
    return remoteParent(frame.traceparent, frame.trace_id, placement);
  }

  private applyJobFrame(
    type: 'job_ack' | 'job_started' | 'job_result',
    nodeId: string,
    frame: { job_id: string; attempt_id: number } & Record<string, unknown>,
  ): Promise<ProgressOutcome> {
    switch (type) {
      case 'job_ack':
        return this.jobs.ack(nodeId, frame.job_id, frame.attempt_id);
      case 'job_started':
        return this.jobs.started(nodeId, frame.job_id, frame.attempt_id);
      case 'job_result':
        return this.jobs.result(nodeId, frame.job_id, frame.attempt_id, frame);
    }
  }
}

/** A heartbeat of a node Redis does not know (its record is gone): it must register again. */
export function notRegistered(nodeId: string): SwitchboardError {
  return new SwitchboardError('NOT_REGISTERED', `node ${nodeId} is not registered; send node_register`);
}

function refusal(nodeId: string, policy: 'offline' | 'refuse' | 'node'): SwitchboardError {
  const when =
    policy === 'offline'
      ? 'only while it is offline (no connection holds it) and not revoked'
      : 'only after an operator reset (POST /v1/nodes/:id/reset)';
  return new SwitchboardError(
    'UNAUTHORIZED',
    `node ${nodeId} is already registered: present its node token, or the join token may take it ${when}`,
    { status: 403 },
  );
}
