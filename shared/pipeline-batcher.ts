import type { ChainableCommander } from 'ioredis';
import { Cluster } from 'ioredis';
import type { RedisClient } from './redis-client.ts';

interface Pending {
  add: (pipeline: ChainableCommander) => void;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Plain pipelining for a hot path: commands issued during one event-loop turn leave in one
 * pipeline (one write, one round trip) instead of one write each. On Cluster, one pipeline per
 * shard (all of a shard's keys share a slot). Measured against ioredis auto-pipelining: see
 * bench/README.md.
 */
export class PipelineBatcher {
  private readonly pending = new Map<number, Pending[]>();
  private scheduled = false;
  private readonly cluster: boolean;

  constructor(private readonly redis: RedisClient) {
    this.cluster = redis instanceof Cluster;
  }

  /** Queues `add` (which appends ONE command to the pipeline) and resolves with its reply. */
  run<T>(shard: number, add: (pipeline: ChainableCommander) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const key = this.cluster ? shard : 0;
      let list = this.pending.get(key);
      if (!list) this.pending.set(key, (list = []));
      list.push({ add, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    for (const batch of this.pending.values()) {
      const pipeline = this.redis.pipeline();
      for (const p of batch) p.add(pipeline);
      pipeline.exec().then(
        (results) => {
          batch.forEach((p, i) => {
            const [err, reply] = results?.[i] ?? [new Error('pipeline returned no reply'), null];
            if (err) p.reject(err);
            else p.resolve(reply);
          });
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err);
        },
      );
    }
    this.pending.clear();
  }
}
