import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Result } from 'ioredis';

/**
 * Lua loader. Scripts live in `lua/` named `verbNoun-<numKeys>.lua`; the key count comes from
 * the file name. `verbNoun-<n>+.lua` takes n fixed keys and then any number more (all of one
 * shard's slot); its caller passes the key count first, as with EVAL. `-- @include "name"` lines pull in `lua/includes/<name>.lua`. Every script
 * becomes a custom ioredis command (EVALSHA, falling back to EVAL after a Redis restart),
 * typed below by augmenting RedisCommander — add the signature when adding a script.
 */

export const LUA_DIR = fileURLToPath(new URL('../lua/', import.meta.url));

export interface LuaScript {
  name: string;
  /** undefined for variadic scripts (`-<n>+.lua`): the caller passes the count. */
  numberOfKeys: number | undefined;
  lua: string;
}

const FILE_NAME = /^([a-z][A-Za-z]+)-(\d+)(\+?)\.lua$/;

export function loadLuaScripts(dir: string = LUA_DIR): LuaScript[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => {
      const match = FILE_NAME.exec(file);
      if (!match)
        throw new Error(`lua/${file}: expected the name verbNoun-<numKeys>.lua or verbNoun-<n>+.lua`);
      const source = readFileSync(`${dir}/${file}`, 'utf8').replace(
        /^--\s*@include\s+"([\w-]+)"\s*$/gm,
        (_, include: string) => readFileSync(`${dir}/includes/${include}.lua`, 'utf8'),
      );
      return { name: match[1]!, numberOfKeys: match[3] ? undefined : Number(match[2]), lua: source };
    });
}

let cached: LuaScript[] | undefined;

/** The SHA1 Redis knows script `name` by (EVALSHA), of its source with includes expanded. */
export function scriptSha(name: string): string {
  cached ??= loadLuaScripts();
  const script = cached.find((s) => s.name === name);
  if (!script) throw new Error(`no script lua/${name}-<n>.lua`);
  return createHash('sha1').update(script.lua).digest('hex');
}

interface CommandDefiner {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** Defines every script as a command on `client`. */
export function defineScripts(client: CommandDefiner): void {
  cached ??= loadLuaScripts();
  for (const { name, numberOfKeys, lua } of cached) {
    client.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
  }
}

type Arg = string | number;
/** Heartbeat reply: [code, status, capability_changed, dirty_was_empty] (codes: store/node-shard.ts). */
export type HeartbeatReply = [number, string, number, number];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    registerNode(
      node: string,
      live: string,
      offline: string,
      dirty: string,
      caps: string,
      capRefs: string,
      ...args: Arg[]
    ): Result<[number, number, number, number], Context>;
    recordHeartbeat(
      node: string,
      live: string,
      offline: string,
      dirty: string,
      published: string,
      caps: string,
      capRefs: string,
      ...args: Arg[]
    ): Result<HeartbeatReply, Context>;
    markOffline(
      node: string,
      live: string,
      offline: string,
      dirty: string,
      nodeId: string,
      epoch: Arg,
      nowMs: number,
      cutoffMs: Arg,
    ): Result<[number, number], Context>;
    takeDirty(dirty: string, taken: string, batch: number): Result<(string | number)[], Context>;
    /**
     * Variadic: numKeys, then checkpoint, version, deltas, taken, published, dirty, caps, caprefs, one node
     * hash per upsert, then ARGV. Use `SnapshotStore.publish` (shared/store/snapshot.ts).
     */
    publishSnapshot(numKeys: number, ...keysAndArgs: Arg[]): Result<[number, number, number], Context>;
    reserveSlot(
      node: string,
      live: string,
      reservation: string,
      reservations: string,
      inbox: string,
      dirty: string,
      assignments: string,
      ...args: Arg[]
    ): Result<[number, number, number, number, number], Context>;
    ackJob(
      node: string,
      reservation: string,
      reservations: string,
      running: string,
      inbox: string,
      dirty: string,
      nodeId: string,
      jobId: string,
      attemptId: number,
      nowMs: number,
      jobTimeoutMs: number,
    ): Result<[number, number], Context>;
    releaseJob(
      node: string,
      reservation: string,
      reservations: string,
      running: string,
      inbox: string,
      dirty: string,
      nodeId: string,
      jobId: string,
      attemptId: number,
    ): Result<[number, number], Context>;
    expireSlot(
      node: string,
      reservation: string,
      reservations: string,
      running: string,
      inbox: string,
      dirty: string,
      assignments: string,
      kind: 'reservation' | 'running',
      member: string,
      nodeId: string,
      cancelFrame: string,
      streamCap: number,
    ): Result<[number, number], Context>;
    failoverJob(
      job: string,
      openJobs: string,
      failed: string,
      attemptId: number,
      reason: string,
      nowMs: number,
      maxAttempts: number,
      jobId: string,
      nextSweepMs: number,
      indexCap: number,
      eventsChannel: string,
    ): Result<[0] | [1, string, string] | [2], Context>;
    sweepJob(
      job: string,
      openJobs: string,
      jobId: string,
    ): Result<[0] | [1, string, string, string, string, string], Context>;
    recordAttempt(
      job: string,
      failed: string,
      previousAttempt: number,
      attemptId: number,
      nodeId: string,
      nowMs: number,
      errorJson: string,
      indexCap: number,
    ): Result<number, Context>;
    reconcileNode(
      node: string,
      reservations: string,
      running: string,
      nodeId: string,
    ): Result<[number, number, number], Context>;
    advanceJob(
      job: string,
      failed: string,
      attemptId: number,
      status: 'accepted' | 'running' | 'finished' | 'failed',
      nowMs: number,
      resultJson: string,
      errorJson: string,
      nodeId: string,
      indexCap: number,
      eventsChannel: string,
      jobId: string,
    ): Result<number, Context>;
    claimJob(
      job: string,
      placing: string,
      open: string,
      recent: string,
      ...args: Arg[]
    ): Result<[1] | [0, string, string, string, string], Context>;
    repointJob(
      job: string,
      placing: string,
      jobId: string,
      from: string,
      to: string,
      nowMs: number,
      answer: string,
      deadlineMs: number,
    ): Result<number, Context>;
    dropJob(job: string, placing: string, jobId: string, nodeId: string): Result<number, Context>;
    fenceReservation(
      reservation: string,
      running: string,
      nodeId: string,
      jobId: string,
      claimToken: string,
      ttlMs: number,
    ): Result<number, Context>;
    setDrain(
      node: string,
      dirty: string,
      nodeId: string,
      drain: '0' | '1',
      nowMs: number,
      by: string,
    ): Result<[number, number], Context>;
    removeNode(
      node: string,
      offline: string,
      dirty: string,
      caps: string,
      capRefs: string,
      nodeId: string,
      cutoffMs: number,
    ): Result<[number, number], Context>;
    recordNodeError(node: string, errorJson: string, nowMs: number): Result<number, Context>;
    revokeNode(
      node: string,
      tokens: string,
      assignments: string,
      live: string,
      offline: string,
      dirty: string,
      nodeId: string,
      claim: 'blocked' | 'open',
      nowMs: number,
      streamCap: number,
      by?: string,
    ): Result<[number, number, number], Context>;
    releaseConnection(node: string, epoch: number): Result<number, Context>;
    recordNodeFault(
      node: string,
      dirty: string,
      nodeId: string,
      nowMs: number,
      windowMs: number,
      threshold: number,
      baseMs: number,
      maxMs: number,
      reason: string,
    ): Result<[number, number, number], Context>;
    clearNodeFaults(node: string): Result<number, Context>;
    appendPartial(
      job: string,
      partials: string,
      nodeId: string,
      text: string,
      isFinal: '0' | '1',
      nowMs: number,
      streamCap: number,
      eventsChannel: string,
      jobId: string,
    ): Result<number, Context>;
  }
}
