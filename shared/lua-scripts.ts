import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Result } from 'ioredis';

/**
 * Lua loader. Scripts live in `lua/` named `verbNoun-<numKeys>.lua`; the key count comes from
 * the file name. `-- @include "name"` lines pull in `lua/includes/<name>.lua`. Every script
 * becomes a custom ioredis command (EVALSHA, falling back to EVAL after a Redis restart),
 * typed below by augmenting RedisCommander — add the signature when adding a script.
 */

export const LUA_DIR = fileURLToPath(new URL('../lua/', import.meta.url));

export interface LuaScript {
  name: string;
  numberOfKeys: number;
  lua: string;
}

const FILE_NAME = /^([a-z][A-Za-z]+)-(\d+)\.lua$/;

export function loadLuaScripts(dir: string = LUA_DIR): LuaScript[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => {
      const match = FILE_NAME.exec(file);
      if (!match) throw new Error(`lua/${file}: expected the name verbNoun-<numKeys>.lua`);
      const source = readFileSync(`${dir}/${file}`, 'utf8').replace(
        /^--\s*@include\s+"([\w-]+)"\s*$/gm,
        (_, include: string) => readFileSync(`${dir}/includes/${include}.lua`, 'utf8'),
      );
      return { name: match[1]!, numberOfKeys: Number(match[2]), lua: source };
    });
}

let cached: LuaScript[] | undefined;

interface CommandDefiner {
  defineCommand(name: string, definition: { lua: string; numberOfKeys: number }): void;
}

/** Defines every script as a command on `client`. */
export function defineScripts(client: CommandDefiner): void {
  cached ??= loadLuaScripts();
  for (const script of cached) client.defineCommand(script.name, script);
}

type Arg = string | number;
/** Heartbeat reply: [code, status, capability_changed, dirty_was_empty]. */
export type HeartbeatReply = [number, string, number, number];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    registerNode(
      node: string,
      nodes: string,
      live: string,
      offline: string,
      dirty: string,
      ...args: Arg[]
    ): Result<[number, number, number, number], Context>;
    recordHeartbeat(
      node: string,
      live: string,
      offline: string,
      dirty: string,
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
    ): Result<[number, number], Context>;
    recordNodeError(node: string, errorJson: string, nowMs: number): Result<number, Context>;
  }
}
