import type { KeyBuilder } from '../keys.ts';
import type { RedisClient } from '../redis-client.ts';

/**
 * Each selector's own cumulative figures (jobs by outcome, reservation conflicts, the choice and
 * POST /v1/jobs histograms), published into one hash every few seconds so that any selector's
 * console can show the whole fleet's jobs/s and p99s (README "Console"): `<{prefix}:sel>:figures`,
 * selector id → JSON with its own clock `at`. Readers take the entries younger than `freshMs`; an
 * entry older than `forgetMs` (a selector gone) is deleted by whoever reads it.
 */
export interface SelectorFigures {
  id: string;
  /** when the figures were read, ms (the selector's clock) */
  at: number;
  jobs: Record<string, number>;
  reservation_conflicts: number;
  selection_seconds: { count: number; buckets: [number | null, number][] };
  request_seconds: { count: number; buckets: [number | null, number][] };
}

export class SelectorFiguresStore {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    keys: KeyBuilder,
    private readonly options: { freshMs: number; forgetMs: number } = { freshMs: 10_000, forgetMs: 60_000 },
  ) {
    this.key = keys.selectorFigures;
  }

  async publish(figures: SelectorFigures): Promise<void> {
    await this.redis.hset(this.key, figures.id, JSON.stringify(figures));
  }

  /** Every selector's figures published within `freshMs`, by id; forgets the long gone. */
  async fresh(now = Date.now()): Promise<SelectorFigures[]> {
    const all = await this.redis.hgetall(this.key);
    const fresh: SelectorFigures[] = [];
    const gone: string[] = [];
    for (const [id, json] of Object.entries(all)) {
      let f: SelectorFigures | null = null;
      try {
        f = JSON.parse(json) as SelectorFigures;
      } catch {
        // not ours to read: forget it
      }
      if (!f || now - f.at > this.options.forgetMs) gone.push(id);
      else if (now - f.at <= this.options.freshMs) fresh.push(f);
    }
    if (gone.length > 0) await this.redis.hdel(this.key, ...gone);
    return fresh.sort((a, b) => a.id.localeCompare(b.id));
  }

  async forget(id: string): Promise<void> {
    await this.redis.hdel(this.key, id);
  }
}
