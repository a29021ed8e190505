import type { KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';

/**
 * Sessions (`payload.session_id`), as the lingua scheduler keeps them, in the job shards
 * (`{p:j<k>}:sess:<id>` by crc32(session id)): the node of a session's last job (its next jobs
 * go there while it is eligible) and the next utterance index for jobs that give a session_id
 * without one. One hash per session, kept SB_SESSION_TTL_MS after its last job.
 */
export class SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyBuilder,
    private readonly ttlMs: number,
  ) {}

  /** The node the session's last job went to, if the session is still known. */
  async node(sessionId: string): Promise<string | null> {
    return this.redis.hget(this.keys.session(sessionId), 'node');
  }

  /**
   * Binds the session to `nodeId` and, with `allocate`, takes its next utterance index (0, 1,
   * 2, … per session), in one MULTI; the session lives another SB_SESSION_TTL_MS. Returns the
   * index taken (null without `allocate`).
   */
  async bind(sessionId: string, nodeId: string, allocate = false): Promise<number | null> {
    const key = this.keys.session(sessionId);
    const tx = this.redis.multi();
    if (allocate) tx.hincrby(key, 'next', 1);
    tx.hset(key, 'node', nodeId).pexpire(key, this.ttlMs);
    const results = (await tx.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
    return allocate ? Number(results[0]?.[1]) - 1 : null;
  }
}
