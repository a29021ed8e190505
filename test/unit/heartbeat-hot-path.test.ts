import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CapabilityCache, sameJson } from '../../services/gateway/capability-cache.ts';
import { canonicalJson } from '../../shared/capability-digest.ts';
import { isHeartbeatCore } from '../../shared/protocol/heartbeat-core.ts';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../shared/protocol/json-message.ts';
import { nodeHeartbeatCoreSchema, nodeHeartbeatSchema } from '../../shared/protocol/node-messages.ts';
import { hostileValue, mutant } from '../support/fuzz-oracle.ts';
import { heartbeatBody } from '../support/node-fixtures.ts';

/**
 * The heartbeat hot path's hand-written parts (issue 13 deliverable 1) held to what they
 * replace: the core check never accepts what the zod schema refuses, the capability cache's
 * equality never calls different capabilities equal, the depth check answers as the full scan.
 */

const RUNS = { numRuns: 400 } as const;

describe('isHeartbeatCore: a subset of nodeHeartbeatCoreSchema', () => {
  it('accepts the fixture and its load variants, as the schema does', () => {
    const forms = [
      heartbeatBody('n-1'),
      heartbeatBody('n-1', {}, { gpu_percent: null, gpu_mem_percent: undefined, cpu_percent: 0.5 }),
      heartbeatBody('n-1', { processing_metrics: { a: 1 }, rerun_metrics: [1], asr_metrics: 'x' }),
      heartbeatBody('n-1', { processing_metrics: null, timestamp: 0 }),
    ];
    for (const body of forms) {
      expect(isHeartbeatCore(body), JSON.stringify(body)).toBe(true);
      expect(nodeHeartbeatCoreSchema.safeParse(body).success).toBe(true);
    }
  });

  it('refuses what the schema refuses: one field of a valid heartbeat mutated or removed', () => {
    fc.assert(
      fc.property(mutant(heartbeatBody('n-1')), ({ body }) => {
        const parsed = JSON.parse(JSON.stringify(body)) as Record<string, unknown>; // as received
        if (isHeartbeatCore(parsed)) expect(nodeHeartbeatCoreSchema.safeParse(parsed).success).toBe(true);
      }),
      RUNS,
    );
  });

  it('refuses what the schema refuses: hostile values in every core field', () => {
    const fields = [
      ['node_id'],
      ['timestamp'],
      ['resource_usage'],
      ['resource_usage', 'cpu_percent'],
      ['resource_usage', 'gpu_percent'],
      ['resource_usage', 'gpu_mem_percent'],
      ['resource_usage', 'mem_percent'],
      ['resource_usage', 'running_jobs'],
      ['processing_metrics'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fields), hostileValue, (path, value) => {
        const body = heartbeatBody('n-1') as Record<string, Record<string, unknown>>;
        if (path.length === 1) (body as Record<string, unknown>)[path[0]!] = value;
        else body[path[0]!]![path[1]!] = value;
        const parsed = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
        if (isHeartbeatCore(parsed)) expect(nodeHeartbeatCoreSchema.safeParse(parsed).success).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('sameJson: the capability cache equality', () => {
  it('is true for a value and its copy, whatever the key order', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
        const copy = JSON.parse(JSON.stringify(v)) as unknown;
        expect(sameJson(v, copy)).toBe(true);
      }),
      RUNS,
    );
    expect(sameJson({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 })).toBe(true);
  });

  it('equal values have the same canonical form (so the cached digest is right)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 4 }), (a, b) => {
        if (sameJson(a, b)) expect(canonicalJson(a)).toBe(canonicalJson(b));
      }),
      RUNS,
    );
  });

  it('tells apart values that differ anywhere', () => {
    const base = { s: [{ id: 'a', ok: true }], n: 1, x: null };
    for (const other of [
      { s: [{ id: 'a', ok: false }], n: 1, x: null },
      { s: [{ id: 'a', ok: true }], n: 1 },
      { s: [{ id: 'a', ok: true }], n: 1, x: null, y: 0 },
      { s: [{ id: 'a', ok: true }, 1], n: 1, x: null },
      { s: { 0: { id: 'a', ok: true } }, n: 1, x: null },
      { s: [{ id: 'a', ok: true }], n: '1', x: null },
    ])
      expect(sameJson(base, other), JSON.stringify(other)).toBe(false);
  });

  it('a cache hit needs every capability field equal to the validated one', () => {
    const cache = new CapabilityCache();
    const body = heartbeatBody('n-1');
    const hb = nodeHeartbeatSchema.parse(body);
    expect(cache.hit('n-1', body)).toBeNull();
    const resolved = cache.resolve('n-1', body, hb);
    const hit = cache.hit('n-1', JSON.parse(JSON.stringify(body)) as Record<string, unknown>);
    expect(hit).toMatchObject({ svc: resolved.svc, lang: resolved.lang, cached: true });
    const changed = heartbeatBody('n-1', {
      capability_by_type: [{ type: 'asr', ready: false }],
    });
    expect(cache.hit('n-1', changed)).toBeNull();
    expect(
      cache.hit('n-1', heartbeatBody('n-1', { language_capabilities: { asr_languages: ['fr'] } })),
    ).toBeNull();
    // a heartbeat without the optional part: the part is not sent (null), the rest hits
    expect(cache.hit('n-1', heartbeatBody('n-1', { language_capabilities: undefined }))?.lang).toBeNull();
  });
});

/** The scan jsonDepthExceeds did before its bracket count (the reference). */
function depthByScan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (++depth > limit) return true;
    } else if (c === '}' || c === ']') depth--;
  }
  return false;
}

describe('jsonDepthExceeds', () => {
  const nested = (d: number, open = '[', close = ']') => `${open.repeat(d)}1${close.repeat(d)}`;

  it('answers as the full scan, with brackets inside strings, escapes and any depth', () => {
    const text = fc.oneof(
      fc.json({ maxDepth: 6 }),
      fc.integer({ min: 1, max: 140 }).map((d) => nested(d)),
      fc.integer({ min: 1, max: 140 }).map((d) => `{"a":"${'['.repeat(d)}\\"${'{'.repeat(d)}"}`),
      fc.integer({ min: 1, max: 100 }).map((d) => `${'{"k":['.repeat(d)}0${']}'.repeat(d)}`),
      fc.string({ maxLength: 300, unit: fc.constantFrom('[', '{', ']', '}', '"', '\\', 'a', ',') }),
    );
    fc.assert(
      fc.property(text, fc.constantFrom(MAX_JSON_DEPTH, 3, 0), (t, limit) => {
        expect(jsonDepthExceeds(t, limit)).toBe(depthByScan(t, limit));
      }),
      { numRuns: 1000 },
    );
  });

  it('draws the line at MAX_JSON_DEPTH', () => {
    expect(jsonDepthExceeds(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonDepthExceeds(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    // more brackets than the limit, none nested deep: the scan decides
    expect(jsonDepthExceeds(JSON.stringify(Array.from({ length: 200 }, () => [{}])))).toBe(false);
  });
});
