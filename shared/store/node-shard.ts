import type { KeyBuilder, ShardKeys } from '../keys.ts';
import type { Logger } from '../logger.ts';
import { scriptSha, type HeartbeatReply } from '../lua-scripts.ts';
import type { RedisClient } from '../redis-client.ts';
import { HeartbeatTemplate } from './heartbeat-command.ts';
import { HEARTBEAT_CODE, HeartbeatCall, type HeartbeatReplies } from './heartbeat-call.ts';
import { HeartbeatConnection } from './heartbeat-connection.ts';
import { CommandDeadlines, encodeEvalsha, PrebuiltCommand } from './script-command.ts';

/**
 * The node shard's typed store, heartbeat side (issue 12 deliverable 1): the ONE place that
 * builds the keys of registerNode, recordHeartbeat, markOffline, recordNodeError and
 * releaseConnection, packs their ARGV from named fields, turns their return codes into named
 * results, and does the derived work a script asks for (a snapshot flush when the shard's dirty
 * set was empty). Services never see a key or a script code.
 */

type Arg = string | number;

/** A capability part as the scripts store it: digest + canonical JSON. */
export interface StoredPart {
  digest: string;
  blob: string;
}

/**
 * Arguments of one registration, already validated and canonicalised. The node's platform,
 * agent version and accept_public_jobs are in the static part; its installed models are not
 * stored (nothing reads them).
 */
export interface RegistrationWrite {
  nodeId: string;
  hasGpu: boolean;
  maxJobs: number;
  parts: { static: StoredPart; svc: StoredPart; lang: StoredPart };
}

/**
 * What proves the registrant is the node: `node` (its own token or its socket, or auth off),
 * or the join token under an SB_JOIN_REREGISTER policy; and the transport that holds it (not
 * stored: only a socket handed over by a gateway shutting down, releaseConnection, matters to
 * a later registration).
 */
export interface RegistrationProof {
  by: 'node' | 'offline' | 'refuse';
  conn: 'ws' | 'http';
}

/** registerNode's answer: `id_taken` for a generated id that exists, `refused` for the join token. */
export type RegisterResult =
  { kind: 'registered'; epoch: number; isNew: boolean } | { kind: 'id_taken' } | { kind: 'refused' };

/** One heartbeat, validated; capability parts canonical (see CapabilityCache). */
export interface HeartbeatWrite {
  nodeId: string;
  /** the node's timestamp, ms (ordering only) */
  timestamp: number;
  cpu: number;
  gpu: number | null;
  gpuMem: number | null;
  mem: number;
  running: number;
  anyReady: boolean;
  svc: StoredPart;
  /** null: the heartbeat did not carry the part (unchanged) */
  lang: StoredPart | null;
  /** installed models: not stored (nothing reads them); the gateway's template compares them */
  models: StoredPart | null;
  /** The parts are what this gateway last sent for the node: try without the blobs first. */
  cached: boolean;
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

export { HEARTBEAT_CODE };

/** recordHeartbeat's KEYS + ARGV, in the order lua/recordHeartbeat-7.lua documents. */
export function heartbeatKeysAndArgs(
  k: ShardKeys,
  h: HeartbeatWrite,
  p: HeartbeatPolicy,
  nowMs: number,
  withBlobs: boolean,
): Arg[] {
  const lang = h.lang;
  return [
    k.node(h.nodeId),
    k.live,
    k.offline,
    k.dirty,
    k.published,
    k.caps,
    k.capRefs,
    h.nodeId,
    h.timestamp,
    nowMs,
    h.cpu,
    h.gpu ?? '',
    h.gpuMem ?? '',
    h.mem,
    h.running,
    h.anyReady ? 1 : 0,
    p.requireGpu ? 1 : 0,
    h.svc.digest,
    withBlobs ? h.svc.blob : '',
    lang ? lang.digest : '',
    lang && withBlobs ? lang.blob : '',
    p.loadChangeThreshold,
    p.snapshotMaxAgeMs,
    p.unhealthyHeartbeats,
    p.reorderWindowMs,
  ];
}
export const HEARTBEAT_KEYS = 7;
/** Nodes whose heartbeat command one store keeps prebuilt (~0.5 KB each). */
const TEMPLATE_NODES = 100_000;

/** Where the store asks for the derived work (DerivedWorkQueues). */
export interface DerivedWork {
  requestFlush(shard: number): Promise<void>;
}

export interface NodeShardStoreOptions {
  /**
   * The client's SB_REDIS_COMMAND_TIMEOUT_MS: heartbeats' deadlines are checked by one sweep
   * (script-command.ts), not a timer each. 0 = none.
   */
  commandTimeoutMs: number;
}

export class NodeShardStore implements HeartbeatReplies {
  private readonly log: Logger;
  private readonly heartbeatSha = scriptSha('recordHeartbeat');
  private readonly deadlines = new CommandDeadlines();
  /** Cluster slot of each shard's hash tag (all of a shard's keys share it); null: standalone. */
  private readonly slots: (number | null)[];
  /** Each node's heartbeat EVALSHA without blobs, prebuilt (heartbeat-command.ts); bounded. */
  private readonly templates = new Map<string, HeartbeatTemplate | null>();
  /** The heartbeats' own connection (heartbeat-connection.ts), opened by the first heartbeat; null: not used. */
  private connection: HeartbeatConnection | null | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly work: DerivedWork,
    private readonly policy: HeartbeatPolicy,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'node-shard' });
    const cluster = 'isCluster' in redis && redis.isCluster;
    this.slots = Array.from({ length: keys.shards }, (_, s) => (cluster ? slotOf(keys.shard(s).tag) : null));
  }

  /** registerNode-6.lua: a new connection epoch, or why not. */
  async register(
    w: RegistrationWrite,
    generatedId: boolean,
    proof: RegistrationProof,
  ): Promise<RegisterResult> {
    const k = this.keys.forNode(w.nodeId);
    const p = w.parts;
    // the second element (a capability part changed) asks for nothing since the flush derives pools
    const [epoch, , dirtyWasEmpty, isNew] = await this.redis.registerNode(
      k.node(w.nodeId),
      k.live,
      k.offline,
      k.dirty,
      k.caps,
      k.capRefs,
      w.nodeId,
      Date.now(),
      w.hasGpu ? 1 : 0,
      w.maxJobs,
      p.static.digest,
      p.static.blob,
      p.svc.digest,
      p.svc.blob,
      p.lang.digest,
      p.lang.blob,
      generatedId ? 1 : 0,
      proof.by === 'node' ? '' : proof.by,
    );
    if (epoch === -1) return { kind: 'id_taken' };
    if (epoch === -2) return { kind: 'refused' };
    if (dirtyWasEmpty === 1) await this.followUp(w.nodeId, k.shard);
    return { kind: 'registered', epoch, isNew: isNew === 1 };
  }

  /**
   * recordHeartbeat-7.lua, without blobs first when the parts are believed stored (the script
   * answers `send blobs` when another replica wrote other digests since), then the follow-up.
   */
  heartbeat(h: HeartbeatWrite): Promise<HeartbeatOutcome> {
    // not an async function: its promise and await machinery cost ~0.4 KB per heartbeat
    // (bench/alloc.ts "WHOLE GATEWAY"); one `then` instead
    const k = this.keys.forNode(h.nodeId);
    return this.recordHeartbeat(k, h, !h.cached).then((reply) => this.outcomeOf(k, h, reply));
  }

  private outcomeOf(
    k: ShardKeys,
    h: HeartbeatWrite,
    reply: HeartbeatReply,
  ): Promise<HeartbeatOutcome> | HeartbeatOutcome {
    return reply[0] === HEARTBEAT_CODE.sendBlobs
      ? this.recordHeartbeat(k, h, true).then((again) => this.heartbeatOutcome(k, h, again))
      : this.heartbeatOutcome(k, h, reply);
  }

  /** A node socket's reusable heartbeat (heartbeat-call.ts). */
  heartbeatCall(done: HeartbeatCall['done'], failed: HeartbeatCall['failed']): HeartbeatCall {
    return new HeartbeatCall(this, done, failed);
  }

  /** heartbeat(call.write), answered through the call's callbacks (heartbeat-call.ts). */
  sendHeartbeat(call: HeartbeatCall): void {
    const h = call.write;
    const k = this.keys.forNode(h.nodeId);
    const template = h.cached ? this.template(k, h) : null;
    const connection = this.connection;
    if (template === null || !connection?.ready) {
      this.heartbeat(h).then(call.outcome, call.failed);
      return;
    }
    call.keys = k;
    connection.sendTo(template.encode(h, Date.now()), call.onReply, call.onError);
  }

  /** The outcome of a call's reply that asks for more (blobs, derived work). */
  async settle(call: HeartbeatCall, reply: HeartbeatReply): Promise<HeartbeatOutcome> {
    return this.outcomeOf(call.keys!, call.write, reply);
  }

  private heartbeatOutcome(
    k: ShardKeys,
    h: HeartbeatWrite,
    reply: HeartbeatReply,
  ): HeartbeatOutcome | Promise<HeartbeatOutcome> {
    const code = reply[0];
    if (code === HEARTBEAT_CODE.notRegistered) return { kind: 'not_registered' };
    if (code === HEARTBEAT_CODE.stale) return { kind: 'stale', status: reply[1] };
    const capabilityChanged = reply[2] === 1;
    const outcome: HeartbeatOutcome = {
      kind: code === HEARTBEAT_CODE.clockJump ? 'clock_jump' : 'applied',
      status: reply[1],
      capabilityChanged,
    };
    if (reply[3] !== 1) return outcome;
    return this.followUp(h.nodeId, k.shard).then(() => outcome);
  }

  /**
   * One EVALSHA, prebuilt (script-command.ts: ~2.9 KB allocated instead of ~11.5 KB); on
   * NOSCRIPT (Redis lost its script cache) once more through the defined command, which loads it.
   */
  recordHeartbeat(k: ShardKeys, h: HeartbeatWrite, withBlobs: boolean): Promise<HeartbeatReply> {
    const template = withBlobs ? null : this.template(k, h);
    const now = Date.now();
    const payload = template
      ? template.encode(h, now)
      : encodeEvalsha(
          this.heartbeatSha,
          HEARTBEAT_KEYS,
          heartbeatKeysAndArgs(k, h, this.policy, now, withBlobs),
        );
    if (this.connection === undefined)
      this.connection = HeartbeatConnection.beside(this.redis, 'gateway-heartbeats', this.log);
    const sent = this.connection?.ready
      ? this.connection.send(payload)
      : this.redis.sendCommand(new PrebuiltCommand(payload, this.slots[k.shard]!, this.deadlines));
    return (sent as Promise<HeartbeatReply>).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      const args = heartbeatKeysAndArgs(k, h, this.policy, now, withBlobs);
      const [node, live, offline, dirty, published, caps, capRefs, ...rest] = args as [
        string,
        string,
        string,
        string,
        string,
        string,
        string,
        ...Arg[],
      ];
      return this.redis.recordHeartbeat(node, live, offline, dirty, published, caps, capRefs, ...rest);
    });
  }

  /** The node's prebuilt heartbeat command for `h`'s parts (null: not templatable). */
  private template(k: ShardKeys, h: HeartbeatWrite): HeartbeatTemplate | null {
    const known = this.templates.get(h.nodeId);
    if (known !== undefined && (known === null || known.fits(h))) return known;
    if (known === undefined && this.templates.size >= TEMPLATE_NODES)
      this.templates.delete(this.templates.keys().next().value!);
    const built = HeartbeatTemplate.build(
      this.heartbeatSha,
      HEARTBEAT_KEYS,
      heartbeatKeysAndArgs,
      k,
      h,
      this.policy,
    );
    this.templates.set(h.nodeId, built);
    return built;
  }

  /**
   * markOffline-4.lua for a closed connection (`epoch`; the reaper passes '' and a cutoff):
   * true when the node went offline (the flush publishes it with no pools).
   */
  async markOffline(nodeId: string, epoch: number | '', cutoffMs: number | '' = ''): Promise<boolean> {
    const k = this.keys.forNode(nodeId);
    const [code, dirtyWasEmpty] = await this.redis.markOffline(
      k.node(nodeId),
      k.live,
      k.offline,
      k.dirty,
      nodeId,
      epoch,
      Date.now(),
      cutoffMs,
    );
    if (dirtyWasEmpty === 1) await this.followUp(nodeId, k.shard);
    return code === 1;
  }

  /** recordNodeError-1.lua: false when the node is not registered. */
  async recordNodeError(
    nodeId: string,
    error: { code: string; message: string; details?: unknown },
  ): Promise<boolean> {
    const k = this.keys.forNode(nodeId);
    return (await this.redis.recordNodeError(k.node(nodeId), JSON.stringify(error), Date.now())) === 1;
  }

  /** releaseConnection-1.lua: no socket holds `epoch` any more; false when it was not current. */
  async releaseConnection(nodeId: string, epoch: number): Promise<boolean> {
    return (await this.redis.releaseConnection(this.keys.forNode(nodeId).node(nodeId), epoch)) === 1;
  }

  /** Stops the deadline sweep and the heartbeats' own connection (the client belongs to the caller). */
  close(): void {
    this.deadlines.close();
    this.connection?.close();
    this.connection = null;
  }

  /** The shard's dirty set went from empty to non-empty: a snapshot flush is due. */
  private async followUp(nodeId: string, shard: number): Promise<void> {
    this.log.debug({ nodeId, shard }, 'enqueue snapshot flush');
    await this.work.requestFlush(shard);
  }
}

/** Redis Cluster's slot of a hash tag: CRC16/XMODEM of the text between the braces, mod 16384. */
export function slotOf(tag: string): number {
  const open = tag.indexOf('{');
  const close = tag.indexOf('}', open + 1);
  const key = open >= 0 && close > open + 1 ? tag.slice(open + 1, close) : tag;
  let crc = 0;
  for (const byte of Buffer.from(key, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
