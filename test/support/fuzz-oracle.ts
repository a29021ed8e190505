import fc from 'fast-check';
import type { Cluster, Redis } from 'ioredis';
import type { z } from 'zod';
import { jobRequestSchema } from '../../shared/protocol/client-messages.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../shared/protocol/json-message.ts';
import {
  asrPartialSchema,
  jobProgressSchema,
  jobResultSchema,
  nodeErrorSchema,
  nodeHeartbeatSchema,
  nodeRegisterSchema,
  type NodeFrameType,
} from '../../shared/protocol/node-messages.ts';
import { heartbeatBody, registerBody } from './node-fixtures.ts';

/**
 * The oracle of the fuzz suite (test/integration/fuzz-*.test.ts): every node frame and HTTP
 * body, its schema, a valid instance to mutate, and what the answer to a mutant must be. A
 * frame type without an entry here fails the typecheck (`satisfies Record<NodeFrameType, …>`).
 */
export const FRAME_SCHEMAS = {
  node_register: nodeRegisterSchema,
  node_heartbeat: nodeHeartbeatSchema,
  job_ack: jobProgressSchema,
  job_started: jobProgressSchema,
  job_result: jobResultSchema,
  node_error: nodeErrorSchema,
  asr_partial: asrPartialSchema,
} satisfies Record<NodeFrameType, z.ZodType>;

/** A valid body of each frame type (without `type`) for node `nodeId`. */
export function validFrame(type: NodeFrameType, nodeId: string): Record<string, unknown> {
  switch (type) {
    case 'node_register':
      return registerBody({ node_id: nodeId });
    case 'node_heartbeat':
      return heartbeatBody(nodeId);
    case 'job_ack':
    case 'job_started':
      return { job_id: 'fuzz-job', attempt_id: 1, node_id: nodeId, session_id: 's', trace_id: 't' };
    case 'job_result':
      return {
        job_id: 'fuzz-job',
        attempt_id: 1,
        node_id: nodeId,
        success: false,
        error: { code: 'E', message: 'm' },
      };
    case 'node_error':
      return { node_id: nodeId, code: 'E_FUZZ', message: 'fuzz', details: { a: [1] } };
    case 'asr_partial':
      return {
        node_id: nodeId,
        job_id: 'fuzz-job',
        session_id: 's',
        utterance_index: 0,
        text: 'hi',
        is_final: false,
      };
  }
}

export const validJobRequest = (): Record<string, unknown> => ({
  src_lang: 'zh',
  tgt_lang: 'en',
  pipeline: { use_asr: true, use_nmt: true, use_tts: true },
  features: ['emotion_detection'],
  routing_key: 'r',
  payload: { audio: 'AAAA' },
});

/** Every path (object keys and array indexes) of a JSON value, the root excluded. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...paths(v, [...prefix, i])]);
  if (value !== null && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...paths(v, [...prefix, k])]);
  return [];
}

const nest = (depth: number): unknown => {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

/** Values that break schemas: wrong types, out of range, huge, deep, hostile strings. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '%E0%A4%A', '\u0000', '__proto__', 'constructor', '😀'.repeat(30), 'x'.repeat(5000)),
  fc.integer(),
  fc.constantFrom(-1, 0, 1e300, -1e300, 2 ** 53, 1.5, 101, 100001),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 5 })), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  fc.constantFrom(nest(MAX_JSON_DEPTH + 6), nest(20)),
  fc.constant(Array.from({ length: 5000 }, (_, i) => `l${i}`)),
);

export type Mutation =
  { path: (string | number)[]; value: unknown } | { path: (string | number)[]; remove: true };

/** A mutant of `base`: one path set to a hostile value, or removed. */
export function mutant(
  base: Record<string, unknown>,
): fc.Arbitrary<{ body: Record<string, unknown>; mutation: Mutation }> {
  const all = paths(base);
  return fc
    .tuple(
      fc.constantFrom(...all),
      fc.oneof(
        { weight: 4, arbitrary: hostileValue.map((value) => ({ value })) },
        { weight: 1, arbitrary: fc.constant({ remove: true as const }) },
      ),
    )
    .map(([path, change]) => {
      const body = structuredClone(base);
      let parent: Record<string | number, unknown> = body;
      for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
      const last = path[path.length - 1]!;
      if ('remove' in change) {
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete parent[last];
        return { body, mutation: { path, remove: true as const } };
      }
      parent[last] = change.value;
      return { body, mutation: { path, value: change.value } };
    });
}

export interface Verdict {
  /** false: the oracle accepts it (the property skips it: sending it could change state) */
  invalid: boolean;
  /** what the message must start with: a field path followed by ':' (or the nesting notice) */
  names: string[];
}

/**
 * What the gateway or selector must say of the JSON `text` it receives under `schema` (`seen`:
 * what the server makes of the parsed body before validating it, e.g. the URL's node_id filled
 * in). Judged on the text, not on the object it was made from: JSON has no NaN or Infinity
 * (they become null) nor undefined.
 */
export function verdict(
  schema: z.ZodType,
  text: string,
  what: 'frame' | 'body',
  seen: (parsed: unknown) => unknown = (parsed) => parsed,
): Verdict {
  if (jsonDepthExceeds(text))
    return { invalid: true, names: [`${what}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`] };
  const result = schema.safeParse(seen(JSON.parse(text)));
  if (result.success) return { invalid: false, names: [] };
  return {
    invalid: true,
    // rendered as describeIssues does (an empty key adds nothing to the path)
    names: result.error.issues.map((i) => `${i.path.map(String).filter(Boolean).join('.') || '(root)'}: `),
  };
}

export const JOB_REQUEST_SCHEMA = jobRequestSchema;

/** Every key under `prefix` with its DUMP (hex): equal before and after = nothing changed. */
export async function redisState(redis: Redis | Cluster, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const node = redis as Redis;
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) out[key] = (await node.dumpBuffer(key))?.toString('hex') ?? '';
  } while (cursor !== '0');
  return out;
}

/**
 * fast-check settings: short runs by default (the whole suite stays well inside its budget);
 * `FUZZ_RUNS=5000 npx vitest run test/integration/fuzz-*` for a longer hunt. A failure prints
 * its seed and the shrunk counterexample.
 */
const runs = Number(process.env['FUZZ_RUNS'] ?? '') || 60;
export const FUZZ_RUNS = { numRuns: runs, endOnFailure: true } as const;
/** For the garbage properties, whose cases are cheaper. */
export const GARBAGE_RUNS = { numRuns: runs * 2.5, endOnFailure: true } as const;
