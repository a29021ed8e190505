import type { Env } from './config.ts';
import type { KeyBuilder } from './keys.ts';
import type { Logger } from './logger.ts';
import { Counter, type Registry } from './metrics.ts';
import type { DerivedWorkQueues } from './queues.ts';
import type { RedisClient } from './redis-client.ts';

/** Why a node was quarantined: its last fault. */
export type FaultReason = 'ack_timeout' | 'job_timeout' | 'job_failed' | 'node_error';

export interface QuarantinePolicy {
  /** Faults within `windowMs` that quarantine a node; 0 = never. */
  faults: number;
  windowMs: number;
  baseMs: number;
  maxMs: number;
}

export function quarantinePolicy(env: Env): QuarantinePolicy {
  return {
    faults: env.SB_QUARANTINE_FAULTS,
    windowMs: env.SB_QUARANTINE_WINDOW_MS,
    baseMs: env.SB_QUARANTINE_BASE_MS,
    maxMs: env.SB_QUARANTINE_MAX_MS,
  };
}

/** `sb_node_quarantines_total{reason}`: on the gateway (failures) and the worker (timeouts). */
export function quarantineCounter(registry: Registry): Counter<'reason'> {
  return new Counter({
    name: 'sb_node_quarantines_total',
    help: 'Nodes put in quarantine, by the reason of their last fault',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
}

/**
 * A failed job_result is the node's fault unless its error says the request was at fault: a
 * code starting with INVALID, BAD_REQUEST, UNSUPPORTED or DUPLICATE, or a lingua
 * `PROCESSING_ERROR` whose message starts with `DUPLICATE_` (the client sent another job for
 * an utterance the node already has).
 */
export function isClientFault(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && /^(INVALID|BAD_REQUEST|UNSUPPORTED|DUPLICATE)/i.test(code)) return true;
  return typeof message === 'string' && message.startsWith('DUPLICATE_');
}

/**
 * Keeps nodes that keep failing the jobs they accept out of selection for a while
 * (README "Quarantine"): one script per fault (recordNodeFault-2.lua) and per success
 * (clearNodeFaults-1.lua) on the node's shard. Best effort: a Redis error is logged, never
 * fails the frame or the tick that reported the fault.
 */
export class NodeQuarantine {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly queues: DerivedWorkQueues,
    private readonly policy: QuarantinePolicy,
    private readonly counter: Counter<'reason'>,
    private readonly log: Logger,
  ) {}

  /** Counts a fault; true when it put the node in quarantine. */
  async fault(nodeId: string, reason: FaultReason): Promise<boolean> {
    if (this.policy.faults === 0) return false;
    const k = this.keys.forNode(nodeId);
    try {
      const [code, until, dirtyWasEmpty] = await this.redis.recordNodeFault(
        k.node(nodeId),
        k.dirty,
        nodeId,
        Date.now(),
        this.policy.windowMs,
        this.policy.faults,
        this.policy.baseMs,
        this.policy.maxMs,
        reason,
      );
      if (code !== 1) return false;
      this.counter.inc({ reason });
      this.log.warn({ nodeId, reason, until: new Date(until).toISOString() }, 'node quarantined');
      if (dirtyWasEmpty === 1) await this.queues.requestFlush(k.shard);
      return true;
    } catch (err) {
      this.log.warn({ nodeId, reason, err: (err as Error).message }, 'could not record a node fault');
      return false;
    }
  }

  /** A finished job: the node's fault count and back-off start over. */
  async success(nodeId: string): Promise<void> {
    if (this.policy.faults === 0) return;
    try {
      await this.redis.clearNodeFaults(this.keys.forNode(nodeId).node(nodeId));
    } catch (err) {
      this.log.warn({ nodeId, err: (err as Error).message }, 'could not clear node faults');
    }
  }
}
