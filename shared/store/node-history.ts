import { SwitchboardError } from '../errors.ts';
import { NODE_ID_PATTERN, type KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';

/**
 * A node's history of status changes, as the scripts that make them record it
 * (`lua/includes/node-history.lua`): entries in the node hash's fields `h0` (newest chunk) …
 * `h5` (oldest), each chunk at most 64 bytes of `<ms base 36, 8 chars><state><reason>[<by>]`
 * joined by ','. This module is the one place the codes are read.
 */
export const HISTORY_FIELDS = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'] as const;

export interface NodeHistoryEntry {
  /** server time of the change, ms */
  at: number;
  /** registering, ready, degraded, offline, draining, undrained, quarantined */
  status: string;
  /** registered, heartbeat, unhealthy_heartbeats, connection_closed, missed_heartbeats, revoked,
   *  reset, drained, undrained, node_error, job_failed, ack_timeout, job_timeout */
  reason: string;
  /** the admin key's label, for an operator's change */
  by?: string;
}

const STATES: Record<string, string> = {
  g: 'registering',
  r: 'ready',
  d: 'degraded',
  o: 'offline',
  D: 'draining',
  U: 'undrained',
  q: 'quarantined',
};

const REASONS: Record<string, string> = {
  R: 'registered',
  h: 'heartbeat',
  u: 'unhealthy_heartbeats',
  c: 'connection_closed',
  m: 'missed_heartbeats',
  v: 'revoked',
  s: 'reset',
  a: 'operator',
  e: 'node_error',
  f: 'job_failed',
  A: 'ack_timeout',
  T: 'job_timeout',
};

/** Every state and reason code the scripts may write (the decoder's tables). */
export const HISTORY_CODES = { states: STATES, reasons: REASONS };

/** The entries in `h0`…`h5` (HMGET order), newest first. Unknown codes read as `unknown`. */
export function decodeNodeHistory(chunks: readonly (string | null | undefined)[]): NodeHistoryEntry[] {
  const entries: NodeHistoryEntry[] = [];
  for (let i = chunks.length - 1; i >= 0; i--) {
    const chunk = chunks[i];
    if (!chunk) continue;
    for (const raw of chunk.split(',')) {
      if (raw.length < 10) continue;
      const at = parseInt(raw.slice(0, 8), 36);
      const state = STATES[raw[8]!] ?? 'unknown';
      let reason = REASONS[raw[9]!] ?? 'unknown';
      if (reason === 'operator') reason = state === 'undrained' ? 'undrained' : 'drained';
      const by = raw.slice(10);
      entries.push(by ? { at, status: state, reason, by } : { at, status: state, reason });
    }
  }
  return entries.reverse();
}

/** Who an operator's change is recorded as: the key's label, at most 16 of [A-Za-z0-9._@-]. */
export function historyActor(label: string | null | undefined): string {
  return (label ?? '').replace(/[^A-Za-z0-9._@-]/g, '').slice(0, 16);
}

const LIVE_FIELDS = [
  'status',
  'draining',
  'running',
  'reserved',
  'hb_at',
  'last_error',
  'q_until',
  'q_reason',
  'q_level',
  'q_strikes',
  'q_at',
] as const;

export interface NodeLiveRecord {
  status: string | null;
  draining: boolean;
  running: number;
  reserved: number;
  last_heartbeat_at: number | null;
  last_error: unknown;
  quarantine: {
    active: boolean;
    until: number | null;
    reason: string | null;
    since: number | null;
    level: number;
    faults: number;
  };
  history: NodeHistoryEntry[];
}

/**
 * The operator's side of a node record (the selector's admin routes): its live view with
 * history, drain / undrain, revoke / reset. Keys, arguments and codes of setDrain-2.lua and
 * revokeNode-6.lua live here.
 */
export class NodeAdminStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly feedCap: number,
  ) {}

  /** The node's live record (one HMGET); `status` null when Redis has none. */
  async live(id: string): Promise<NodeLiveRecord> {
    const v = await this.redis.hmget(this.keys.forNode(id).node(id), ...LIVE_FIELDS, ...HISTORY_FIELDS);
    return {
      status: v[0] ?? null,
      draining: v[1] === '1',
      running: Number(v[2] ?? 0),
      reserved: Number(v[3] ?? 0),
      last_heartbeat_at: v[4] ? Number(v[4]) : null,
      last_error: v[5] ? (JSON.parse(v[5]) as unknown) : null,
      quarantine: quarantineView(v.slice(6, 11)),
      history: decodeNodeHistory(v.slice(11)),
    };
  }

  /**
   * Sets or clears the drain flag (a change of it joins the history, with `by`). Returns
   * whether the shard's dirty set was empty (then request a flush of `shard`); NOT_FOUND for an
   * unknown node.
   */
  async drain(
    id: string,
    on: boolean,
    by: string | null | undefined,
  ): Promise<{ dirtyWasEmpty: boolean; shard: number }> {
    checkNodeId(id);
    const k = this.keys.forNode(id);
    const [code, dirtyWasEmpty] = await this.redis.setDrain(
      k.node(id),
      k.dirty,
      id,
      on ? '1' : '0',
      Date.now(),
      historyActor(by),
    );
    if (code === -1) throw new SwitchboardError('NOT_FOUND', `no node ${id}`);
    return { dirtyWasEmpty: dirtyWasEmpty === 1, shard: k.shard };
  }

  /** revokeNode-6.lua: `blocked` revokes, `open` resets (README "Credentials"). */
  async revoke(
    id: string,
    claim: 'blocked' | 'open',
    by: string | null | undefined,
  ): Promise<{ generation: number; known: boolean; dirtyWasEmpty: boolean; shard: number }> {
    checkNodeId(id);
    const k = this.keys.forNode(id);
    const [generation, known, dirtyWasEmpty] = await this.redis.revokeNode(
      k.node(id),
      k.tokens,
      k.assignments,
      k.live,
      k.offline,
      k.dirty,
      id,
      claim,
      Date.now(),
      this.feedCap,
      historyActor(by),
    );
    return { generation, known: known === 1, dirtyWasEmpty: dirtyWasEmpty === 1, shard: k.shard };
  }
}

function checkNodeId(id: string): void {
  if (!NODE_ID_PATTERN.test(id))
    throw new SwitchboardError('INVALID_MESSAGE', 'node id: expected 1-128 of [A-Za-z0-9._:-]');
}

/**
 * The node's quarantine as the API shows it (README "Quarantine"): `active` while selection
 * skips it; `until`/`reason`/`since` of the last one; `level` = quarantines in a row (the
 * back-off doubles with each); `faults` = faults counted towards the next.
 */
function quarantineView([until, reason, level, strikes, since]: (string | null)[]) {
  const untilMs = Number(until ?? 0);
  return {
    active: untilMs > Date.now(),
    until: untilMs > 0 ? untilMs : null,
    reason: untilMs > 0 ? (reason ?? null) : null,
    since: since ? Number(since) : null,
    level: Number(level ?? 0),
    faults: Number(strikes ?? 0),
  };
}
