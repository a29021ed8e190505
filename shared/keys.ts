import { crc32 } from 'node:zlib';

/**
 * The ONE place where Redis key names are built.
 *
 * Every per-shard key carries the hash tag `{<prefix>:s<k>}` so that all keys one script
 * touches live in one Cluster slot and the shards spread over the masters. Scripts receive
 * every key in KEYS; no script derives a key name from ARGV.
 *
 * Per shard k (tag = `{sb:s<k>}`):
 *   <tag>:node:<id>   hash   the node record (fields: see NodeField); capability parts by digest only
 *   <tag>:caps        hash   capability digest → blob (canonical JSON), once per shard (content-addressed)
 *   <tag>:caprefs     hash   capability digest → node-hash fields naming it (the last one gone deletes the blob)
 *   <tag>:nodes       set    (before issue 13's fourth step; written no more) every node of the
 *                            shard: the node list is `:live` ∪ `:offline` now
 *   <tag>:live        zset   online node id → server time (ms) of its last heartbeat
 *   <tag>:offline     zset   offline node id → server time (ms) it went offline
 *   <tag>:dirty       set    nodes whose snapshot entry must be republished
 *   <tag>:dirty:taken set    the batch a running flush took (crash-safe hand-over)
 *   <tag>:ckpt        hash   node id → published snapshot entry (compact JSON array, languages by digest)
 *   <tag>:pub         hash   (before issue 13's third step) node id → published values: each
 *                            record's `pub` now; read and emptied as nodes heartbeat
 *   <tag>:pools       hash   (before issue 13; written no more) pool → member count
 *   <tag>:pool:<pool> set    (before issue 13; written no more) ids of the shard's nodes in that pool
 *   <tag>:ver         string shard snapshot version
 *   <tag>:deltas      stream one entry per version, ID `<version>-0`
 *   <tag>:inbox:<id>  stream assignments waiting for the node
 *   <tag>:resv:<job>  string reservation "<node>|<attempt>|<inbox entry>", expires after SB_ACK_TIMEOUT_MS
 *   <tag>:resv        zset   "<job>|<node>|<attempt>|<inbox entry>" → reservation expiry (ms)
 *   <tag>:run         zset   "<job>|<node>|<attempt>" → deadline (ms) of acked, unfinished jobs
 *   <tag>:assign      stream every new assignment (node, frame): gateways tail it to push job_assign,
 *                            and control entries (node, control=revoke) that close a node's socket
 *   <tag>:tokens      hash   node id → node-token generation (revocation counter; outlives the node)
 *
 * Jobs are spread over the same number of job shards by crc32(jobId) (tag `{sb:j<k>}`):
 *   <jtag>:job:<id>   hash   the job record (status, request, placement, attempts, timeout_ms)
 *   <jtag>:partials:<id> stream the job's asr_partial texts (attempt, text, final, at), expires with the job
 *   <jtag>:placing    zset   job id → deadline (ms) of a placement whose reservation is not confirmed yet
 *   <jtag>:recent     zset   job id → created_at (ms) of the shard's newest jobs, ≤ JOB_INDEX_CAP (console listing)
 *   <jtag>:failed     zset   job id → finished_at (ms) of the shard's latest failed jobs, ≤ JOB_INDEX_CAP
 *   <jtag>:open       zset   unfinished job id → when the worker's job sweep looks at it next (ms): the
 *                            job-side safety net for a slot its node shard lost (services/worker/job-sweep.ts)
 *   <jtag>:events     channel (sharded pub/sub, SPUBLISH) "<job id>|<status or partial>" for every change
 *                            of a job of the shard, published by the script that made it (no key: nothing stored)
 * The selectors' own figures (console, fleet-wide jobs/s and p99s), one slot:
 *   {<prefix>:sel}:figures hash selector id → its cumulative figures (JSON, `at` its clock);
 *                            readers skip entries older than 10 s and delete those older than 60 s
 * Sessions (`payload.session_id`) by crc32(sessionId), same tags:
 *   <jtag>:sess:<id>  hash   node (of the session's last job), next (utterance index); expires after SB_SESSION_TTL_MS
 */

/**
 * Ids kept per job shard in each job index (`<jtag>:recent`, `<jtag>:failed`): the scripts that
 * add one trim the oldest beyond this; an index may name a job whose record has expired.
 */
export const JOB_INDEX_CAP = 500;

export const NODE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Shard of a node: crc32(nodeId) mod shards. Fixed per deployment. */
export function shardOf(nodeId: string, shards: number): number {
  return crc32(nodeId) % shards;
}

export interface ShardKeys {
  readonly shard: number;
  readonly tag: string;
  readonly nodes: string;
  readonly live: string;
  readonly offline: string;
  readonly dirty: string;
  readonly dirtyTaken: string;
  readonly checkpoint: string;
  readonly published: string;
  readonly caps: string;
  readonly capRefs: string;
  readonly pools: string;
  readonly version: string;
  readonly deltas: string;
  readonly reservations: string;
  readonly running: string;
  readonly assignments: string;
  readonly tokens: string;
  node(nodeId: string): string;
  pool(pool: string): string;
  inbox(nodeId: string): string;
  reservation(jobId: string): string;
}

export class KeyBuilder {
  private readonly shardKeys: ShardKeys[];

  constructor(
    readonly prefix: string,
    readonly shards: number,
  ) {
    this.shardKeys = Array.from({ length: shards }, (_, shard) => buildShardKeys(prefix, shard));
  }

  /** BullMQ prefix: hash-tagged, so each queue's keys stay in one slot on Cluster. */
  get queuePrefix(): string {
    return `{${this.prefix}q}`;
  }

  shardOf(nodeId: string): number {
    return shardOf(nodeId, this.shards);
  }

  shard(shard: number): ShardKeys {
    const keys = this.shardKeys[shard];
    if (!keys) throw new RangeError(`shard ${shard} out of range 0..${this.shards - 1}`);
    return keys;
  }

  forNode(nodeId: string): ShardKeys {
    return this.shard(this.shardOf(nodeId));
  }

  /**
   * The keys of a node's slot for a job, in the order ackJob / releaseJob / expireSlot take
   * them: node hash, reservation, reservations, running jobs, inbox, dirty set.
   */
  slotKeys(nodeId: string, jobId: string): [string, string, string, string, string, string] {
    const k = this.forNode(nodeId);
    return [k.node(nodeId), k.reservation(jobId), k.reservations, k.running, k.inbox(nodeId), k.dirty];
  }

  /** The job shard of a job (or session) id: crc32(id) mod shards. */
  jobShardOf(id: string): number {
    return shardOf(id, this.shards);
  }

  /** A job shard's placing set (job id → deadline of its unconfirmed placement). */
  placing(jobShard: number): string {
    if (!Number.isInteger(jobShard) || jobShard < 0 || jobShard >= this.shards)
      throw new RangeError(`job shard ${jobShard} out of range 0..${this.shards - 1}`);
    return `{${this.prefix}:j${jobShard}}:placing`;
  }

  /** The record of a job, in job shard crc32(jobId) mod shards. */
  job(jobId: string): string {
    return `{${this.prefix}:j${shardOf(jobId, this.shards)}}:job:${jobId}`;
  }

  /** The open-jobs index of job shard `shard`: unfinished job id → next sweep (ms). */
  openJobs(shard: number): string {
    return `{${this.prefix}:j${shard}}:open`;
  }

  /** The asr_partial stream of a job: same slot as its record. */
  partials(jobId: string): string {
    return `{${this.prefix}:j${shardOf(jobId, this.shards)}}:partials:${jobId}`;
  }

  /**
   * The sharded pub/sub channel on which the job shard's scripts announce every change of a job
   * (`<job id>|<status>` or `<job id>|partial`): same slot as the shard's job records, so a script
   * may SPUBLISH to it on Redis Cluster.
   */
  jobEvents(shard: number): string {
    return `{${this.prefix}:j${shard}}:events`;
  }

  /** The channel of a job's shard (see jobEvents). */
  jobEventsOf(jobId: string): string {
    return this.jobEvents(this.jobShardOf(jobId));
  }

  /** The job indexes of job shard `shard` (console listing): newest jobs, latest failed ones. */
  jobIndexes(shard: number): { recent: string; failed: string } {
    const tag = `{${this.prefix}:j${shard}}`;
    return { recent: `${tag}:recent`, failed: `${tag}:failed` };
  }

  /** The job indexes of the shard holding `jobId`'s record (same slot). */
  jobIndexesOf(jobId: string): { recent: string; failed: string } {
    return this.jobIndexes(shardOf(jobId, this.shards));
  }

  /** The selectors' published figures (shared/store/selector-figures.ts). */
  get selectorFigures(): string {
    return `{${this.prefix}:sel}:figures`;
  }

  /** A session's affinity and utterance counter, in job shard crc32(sessionId) mod shards. */
  session(sessionId: string): string {
    return `{${this.prefix}:j${shardOf(sessionId, this.shards)}}:sess:${sessionId}`;
  }
}

function buildShardKeys(prefix: string, shard: number): ShardKeys {
  const tag = `{${prefix}:s${shard}}`;
  return {
    shard,
    tag,
    nodes: `${tag}:nodes`,
    live: `${tag}:live`,
    offline: `${tag}:offline`,
    dirty: `${tag}:dirty`,
    dirtyTaken: `${tag}:dirty:taken`,
    checkpoint: `${tag}:ckpt`,
    published: `${tag}:pub`,
    caps: `${tag}:caps`,
    capRefs: `${tag}:caprefs`,
    pools: `${tag}:pools`,
    version: `${tag}:ver`,
    deltas: `${tag}:deltas`,
    node: (nodeId) => `${tag}:node:${nodeId}`,
    pool: (pool) => `${tag}:pool:${pool}`,
    inbox: (nodeId) => `${tag}:inbox:${nodeId}`,
    reservations: `${tag}:resv`,
    running: `${tag}:run`,
    assignments: `${tag}:assign`,
    tokens: `${tag}:tokens`,
    reservation: (jobId) => `${tag}:resv:${jobId}`,
  };
}
