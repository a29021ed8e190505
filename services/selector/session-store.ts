import type { KeyBuilder } from '../../shared/keys.ts';
import type { RedisClient } from '../../shared/redis-client.ts';

/**
 * Sessions (`payload.session_id`), as the lingua scheduler keeps them: the node of a session's
 * last job (its next jobs go there while it is eligible) and the next utterance index for jobs
 * that give a session_id without one. One hash per session, kept SB_SESSION_TTL_MS after its
 * last job.
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

  /** The session's next utterance index (0, 1, 2, … per session). */
  async nextIndex(sessionId: string): Promise<number> {
    const key = this.keys.session(sessionId);
    const [[, next] = []] = (await this.redis
      .multi()
      .hincrby(key, 'next', 1)
      .pexpire(key, this.ttlMs)
      .exec()) ?? [[]];
    return Number(next) - 1;
  }

  /** Records where the session's job went; the session lives another SB_SESSION_TTL_MS. */
  async bind(sessionId: string, nodeId: string): Promise<void> {
    const key = this.keys.session(sessionId);
    await this.redis.multi().hset(key, 'node', nodeId).pexpire(key, this.ttlMs).exec();
  }
}
