/**
 * What the gateway enqueued on a BullMQ queue between two points in time, read from Redis:
 * the queue's events stream (`added` and `deduplicated` entries after a remembered ID) and
 * its id counter (BullMQ INCRs it on every add call, deduplicated or not).
 */
import type { Redis } from 'ioredis';
import type { KeyBuilder } from '../../shared/keys.ts';

export interface QueueMark {
  queue: string;
  lastEventId: string | null;
  streamLength: number;
  idCounter: number;
}

export interface QueueActivity {
  queue: string;
  /** `added` events after the mark: jobs really created. */
  added: number;
  /** `deduplicated` events after the mark. */
  deduplicated: number;
  /** Add calls that reached Redis (id counter delta). */
  addCalls: number;
  streamLengthBefore: number;
  streamLengthAfter: number;
  /**
   * The stream was trimmed past the mark (BullMQ caps it, ~10,000 events by default), so
   * events after it may be missing: `added` and `deduplicated` are then lower bounds.
   * `addCalls` is not affected.
   */
  eventsTrimmed: boolean;
}

const PAGE = 1000;

/** Orders two stream IDs (`<ms>-<seq>`). */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

function keysOf(keys: KeyBuilder, queue: string): { events: string; id: string } {
  return { events: `${keys.queuePrefix}:${queue}:events`, id: `${keys.queuePrefix}:${queue}:id` };
}

export async function markQueue(redis: Redis, keys: KeyBuilder, queue: string): Promise<QueueMark> {
  const k = keysOf(keys, queue);
  const [last, length, id] = await Promise.all([
    redis.xrevrange(k.events, '+', '-', 'COUNT', 1),
    redis.xlen(k.events),
    redis.get(k.id),
  ]);
  return { queue, lastEventId: last[0]?.[0] ?? null, streamLength: length, idCounter: Number(id ?? 0) };
}

export async function queueActivitySince(
  redis: Redis,
  keys: KeyBuilder,
  mark: QueueMark,
): Promise<QueueActivity> {
  const k = keysOf(keys, mark.queue);
  let added = 0;
  let deduplicated = 0;
  let start = mark.lastEventId ? `(${mark.lastEventId}` : '-';
  for (;;) {
    const page = await redis.xrange(k.events, start, '+', 'COUNT', PAGE);
    for (const [, fields] of page) {
      const event = fields[fields.indexOf('event') + 1];
      if (event === 'added') added++;
      else if (event === 'deduplicated') deduplicated++;
    }
    if (page.length < PAGE) break;
    start = `(${page.at(-1)![0]}`;
  }
  const [length, id, first] = await Promise.all([
    redis.xlen(k.events),
    redis.get(k.id),
    redis.xrange(k.events, '-', '+', 'COUNT', 1),
  ]);
  const firstId = first[0]?.[0];
  return {
    queue: mark.queue,
    added,
    deduplicated,
    addCalls: Number(id ?? 0) - mark.idCounter,
    streamLengthBefore: mark.streamLength,
    streamLengthAfter: length,
    eventsTrimmed:
      mark.lastEventId !== null && firstId !== undefined && compareIds(firstId, mark.lastEventId) > 0,
  };
}
