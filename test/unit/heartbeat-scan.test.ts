import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HeartbeatMemo } from '../../services/gateway/heartbeat-memo.ts';
import type { HeartbeatCapabilities } from '../../services/gateway/capability-cache.ts';
import { HeartbeatScan, scanHeartbeat } from '../../shared/protocol/heartbeat-scan.ts';
import { jsonDepthExceeds } from '../../shared/protocol/json-message.ts';
import { nodeHeartbeatSchema } from '../../shared/protocol/node-messages.ts';
import { heartbeatFrame } from '../../bench/lib/node-messages.ts';
import { hostileValue, mutant } from '../support/fuzz-oracle.ts';
import { clientFrames } from '../support/lingua-node.ts';
import { heartbeatBody } from '../support/node-fixtures.ts';

/**
 * The hand-written heartbeat scan (issue 13 deliverable 1) held to what it replaces, JSON.parse
 * and the zod schema: whenever the fast path takes a frame (HeartbeatMemo.match), the full path
 * would have accepted the same frame, with the same core figures and the same capabilities as
 * the remembered heartbeat. Random mutants of the real frames (the lingua client's recorded
 * heartbeats, the bench's, the test fixture's) at the byte and at the value level.
 */

const NODE = 'node-3F2A9C1B';
const CORE = ['type', 'node_id', 'timestamp', 'resource_usage'];
const RUNS = { numRuns: 1500 } as const;

const lingua = (profile: 'core' | 'full') =>
  ({ ...clientFrames.profiles[profile]['node_heartbeat'], node_id: NODE }) as Record<string, unknown>;
const BASES: Record<string, Record<string, unknown>> = {
  lingua_core: lingua('core'),
  lingua_full: lingua('full'),
  bench: JSON.parse(heartbeatFrame(NODE, 1, 0, 1796233972813)) as Record<string, unknown>,
  fixture: { type: 'node_heartbeat', ...heartbeatBody(NODE) },
};

const CAPS = { cached: true } as unknown as HeartbeatCapabilities;

function memoOf(base: Record<string, unknown>): HeartbeatMemo {
  const memo = new HeartbeatMemo();
  memo.remember(Buffer.from(JSON.stringify(base)), NODE, CAPS, new HeartbeatScan());
  expect(memo.caps).toBe(CAPS);
  return memo;
}

const rest = (v: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(v).filter(([k]) => !CORE.includes(k)));

/**
 * The oracle: if the memo (remembering `base`) takes `text`, then the full path accepts it:
 * JSON (within the depth bound), type node_heartbeat, the schema, the socket's node id; its
 * figures are the scan's and its other members are the remembered ones.
 */
function checkTaken(memo: HeartbeatMemo, base: Record<string, unknown>, text: string | Buffer): boolean {
  const frame = typeof text === 'string' ? Buffer.from(text) : text;
  const scan = new HeartbeatScan();
  if (!memo.match(frame, NODE, scan)) return false;
  const decoded = frame.toString('utf8');
  expect(jsonDepthExceeds(decoded)).toBe(false);
  const value = JSON.parse(decoded) as Record<string, unknown>;
  expect(value['type']).toBe('node_heartbeat');
  const hb = nodeHeartbeatSchema.parse(value);
  expect(hb.node_id).toBe(NODE);
  const usage = hb.resource_usage;
  expect(scan.timestamp).toBe(hb.timestamp);
  expect(Object.is(scan.cpu, usage.cpu_percent)).toBe(true);
  expect(Object.is(scan.mem, usage.mem_percent)).toBe(true);
  expect(scan.gpu).toBe(usage.gpu_percent ?? null);
  expect(scan.gpuMem).toBe(usage.gpu_mem_percent ?? null);
  expect(scan.running).toBe(usage.running_jobs);
  expect(rest(value)).toEqual(rest(base));
  return true;
}

describe('scanHeartbeat on the real frames', () => {
  it.each(Object.keys(BASES))('%s: scans, figures as JSON.parse reads them, members in place', (name) => {
    const base = BASES[name]!;
    const text = JSON.stringify(base);
    const s = new HeartbeatScan();
    expect(scanHeartbeat(Buffer.from(text), s)).toBe(true);
    const usage = base['resource_usage'] as Record<string, number>;
    expect([s.timestamp, s.cpu, s.gpu, s.gpuMem, s.mem, s.running]).toEqual([
      base['timestamp'],
      usage['cpu_percent'],
      usage['gpu_percent'],
      usage['gpu_mem_percent'],
      usage['mem_percent'],
      usage['running_jobs'],
    ]);
    expect(text.slice(s.nodeIdStart, s.nodeIdEnd)).toBe(NODE);
    const members = Array.from(
      { length: s.restCount },
      (_, m) => JSON.parse(`{${text.slice(s.restStart[m], s.restEnd[m])}}`) as Record<string, unknown>,
    );
    expect(Object.assign({}, ...members) as unknown).toEqual(rest(base));
    expect(checkTaken(memoOf(base), base, text)).toBe(true);
  });
});

describe('HeartbeatMemo.match: a subset of JSON.parse + nodeHeartbeatSchema', () => {
  const baseName = fc.constantFrom(...Object.keys(BASES));

  it('takes the next heartbeats of the node, whatever their load figures (as JSON.stringify writes them)', () => {
    const figure = fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), fc.integer({ min: 0, max: 100 }));
    fc.assert(
      fc.property(
        baseName,
        fc.record({
          cpu_percent: figure,
          gpu_percent: fc.option(figure),
          gpu_mem_percent: fc.option(figure),
          mem_percent: figure,
          running_jobs: fc.integer({ min: 0, max: 100000 }),
        }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        (name, usage, timestamp) => {
          const base = BASES[name]!;
          const next = { ...base, timestamp, resource_usage: usage };
          expect(checkTaken(memoOf(base), base, JSON.stringify(next))).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('byte-level mutants: taken only when the full path accepts them the same', () => {
    const alphabet = fc.constantFrom(...'{}[]":,\\ \n0123456789.eE+-nulltrfas_x\u00e9\u0000'.split(''));
    fc.assert(
      fc.property(
        baseName,
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), alphabet), {
          minLength: 1,
          maxLength: 3,
        }),
        (name, edits) => {
          const base = BASES[name]!;
          const memo = memoOf(base);
          let text = JSON.stringify(base);
          for (const [at, op, c] of edits) {
            const i = at % (text.length + 1);
            if (op === 'insert') text = text.slice(0, i) + c + text.slice(i);
            else if (op === 'delete') text = text.slice(0, i) + text.slice(i + 1);
            else text = text.slice(0, i) + c + text.slice(i + 1);
          }
          checkTaken(memo, base, text);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('value-level mutants (hostile values, removed fields): taken only when the full path accepts them', () => {
    fc.assert(
      fc.property(
        baseName.chain((name) => fc.tuple(fc.constant(name), mutant(BASES[name]!))),
        ([name, m]) => {
          const base = BASES[name]!;
          checkTaken(memoOf(base), base, JSON.stringify(m.body));
        },
      ),
      RUNS,
    );
  });

  it('number forms: every JSON number text reads as JSON.parse reads it, or is left to it', () => {
    const forms = fc.oneof(
      fc.constantFrom(
        '0',
        '-0',
        '00',
        '01',
        '1.',
        '.5',
        '1e2',
        '1E-2',
        '1e+2',
        '1e',
        '5.0',
        '100.0000000000000000001',
      ),
      fc.constantFrom(
        '99.99999999999999999',
        '0.30000000000000004',
        '100',
        '100.5',
        '1e400',
        'NaN',
        'Infinity',
      ),
      fc.double({ min: 0, max: 100, noNaN: true }).map(String),
      fc.tuple(fc.nat(999), fc.stringMatching(/^[0-9]{0,25}$/)).map(([a, b]) => (b ? `${a}.${b}` : `${a}`)),
    );
    const field = fc.constantFrom(
      'cpu_percent',
      'gpu_percent',
      'gpu_mem_percent',
      'mem_percent',
      'running_jobs',
    );
    fc.assert(
      fc.property(baseName, field, forms, (name, key, form) => {
        const base = BASES[name]!;
        const usage = JSON.stringify(base['resource_usage']).replace(
          new RegExp(`"${key}":[^,}]*`),
          `"${key}":${form}`,
        );
        const text = JSON.stringify({ ...base, resource_usage: '@' }).replace('"@"', usage);
        checkTaken(memoOf(base), base, text);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{1,16}$/), (digits) => {
        const base = BASES['lingua_core']!;
        const text = JSON.stringify({ ...base, timestamp: 0 }).replace(
          '"timestamp":0',
          `"timestamp":${digits}`,
        );
        checkTaken(memoOf(base), base, text);
      }),
      RUNS,
    );
  });

  it('never takes what needs the full path: other ids, escapes, duplicates, other members, trailing text', () => {
    const base = BASES['lingua_core']!;
    const memo = memoOf(base);
    const text = JSON.stringify(base);
    const refused = [
      JSON.stringify({ ...base, node_id: 'node-other' }),
      JSON.stringify({ ...base, type: 'node_error' }),
      text.replace('"node_id"', '"node\\u005fid"'),
      text.replace('"timestamp"', '"time\\u0073tamp"'),
      text.replace('"installed_models"', '"installed\\u005fmodels"'),
      text.replace('"type":"node_heartbeat"', '"type":"node_heartbeat","type":"node_heartbeat"'),
      text.replace('{"type"', `{"node_id":"${NODE}","type"`),
      text.replace('"cpu_percent"', '"extra":1,"cpu_percent"'),
      JSON.stringify({ ...base, rerun_metrics: { totalReruns: 1 } }),
      JSON.stringify({ ...base, processing_metrics: { a: 1 } }),
      JSON.stringify(rest(base)),
      `${text}x`,
      `${text}{}`,
      `\ufeff${text}`,
      text.slice(0, -1),
      JSON.stringify({
        ...base,
        resource_usage: { ...(base['resource_usage'] as object), cpu_percent: 100.5 },
      }),
      JSON.stringify({ ...base, timestamp: 1.5 }),
      JSON.stringify({ ...base, timestamp: 2 ** 53 }),
    ];
    for (const t of refused) expect(memo.match(Buffer.from(t), NODE, new HeartbeatScan()), t).toBe(false);
    expect(memo.match(Buffer.from(text), 'node-other', new HeartbeatScan())).toBe(false);
    // JSON whitespace anywhere outside the remembered members is still the same heartbeat
    const spaced = text
      .replace('{"type":', '{ \n"type" :\t')
      .replace('"running_jobs":0}', '"running_jobs": 0 } ');
    expect(checkTaken(memo, base, ` ${spaced}\r\n`)).toBe(true);
    memo.forget();
    expect(memo.match(Buffer.from(text), NODE, new HeartbeatScan())).toBe(false);
  });

  it('hostile core values never pass the scan unless the schema accepts them', () => {
    const paths = [
      ['timestamp'],
      ['resource_usage'],
      ...['cpu_percent', 'gpu_percent', 'gpu_mem_percent', 'mem_percent', 'running_jobs'].map((k) => [
        'resource_usage',
        k,
      ]),
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), hostileValue, (path, value) => {
        const base = BASES['bench']!;
        const body = structuredClone(base) as Record<string, Record<string, unknown>>;
        if (path.length === 1) (body as Record<string, unknown>)[path[0]!] = value;
        else body[path[0]!]![path[1]!] = value;
        checkTaken(memoOf(base), base, JSON.stringify(body));
      }),
      RUNS,
    );
  });
});
