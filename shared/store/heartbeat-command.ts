import type { ShardKeys } from '../keys.ts';
import { numberText } from './script-command.ts';
import type { HeartbeatPolicy, HeartbeatWrite, StoredPart } from './node-shard.ts';

/**
 * One node's recordHeartbeat EVALSHA (without blobs) as prebuilt RESP bytes: everything but
 * the figures that change from heartbeat to heartbeat (timestamp, now, cpu, gpu, gpu_mem, mem,
 * running) is encoded once per node and capability parts, so a heartbeat copies a few segments
 * and writes its figures' digits into one Buffer, instead of building the ~26-element argument
 * array, its key strings and number texts (bench/alloc.ts: ~640 B → ~170 B per heartbeat).
 *
 * Where each figure goes is learnt, not written down twice: the template runs `keysAndArgs`
 * (heartbeatKeysAndArgs) once with impossible sentinel figures and finds them, so a change of
 * the script's argument order needs no change here. A figure the template cannot place
 * (transformed, or absent) makes `build` answer null and the caller encodes the full argument
 * list as before. test/unit/heartbeat-command.test.ts compares the bytes with encodeEvalsha's.
 */

type Arg = string | number;
type KeysAndArgs = (
  k: ShardKeys,
  h: HeartbeatWrite,
  p: HeartbeatPolicy,
  nowMs: number,
  withBlobs: boolean,
) => Arg[];

const FIELDS = ['timestamp', 'now', 'cpu', 'gpu', 'gpuMem', 'mem', 'running'] as const;
type Field = (typeof FIELDS)[number];
const SENTINEL: Record<Field, number> = {
  timestamp: -1_000_001,
  now: -1_000_002,
  cpu: -1_000_003,
  gpu: -1_000_004,
  gpuMem: -1_000_005,
  mem: -1_000_006,
  running: -1_000_007,
};
const NULLABLE = new Set<Field>(['gpu', 'gpuMem']);

const CR = 0x0d;
const LF = 0x0a;
const DOLLAR = 0x24;
const EMPTY_BULK = Buffer.from('$0\r\n\r\n', 'latin1');

/** Decimal digits of a non-negative safe integer. */
function digitCount(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

function writeDigits(buf: Buffer, at: number, n: number, digits: number): number {
  for (let i = at + digits - 1; i >= at; i--) {
    buf[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

export class HeartbeatTemplate {
  private constructor(
    readonly svc: StoredPart,
    readonly lang: StoredPart | null,
    readonly models: StoredPart | null,
    readonly anyReady: boolean,
    /** segments[i] precedes field i; the last one follows the last field */
    private readonly segments: Buffer[],
    private readonly fields: Field[],
    /** how a null figure is sent (heartbeatKeysAndArgs' `''`), per field */
    private readonly nullArg: Map<Field, Buffer>,
    private readonly constantBytes: number,
  ) {}

  /** The template of `h`'s node and parts, or null when the argument list cannot be templated. */
  static build(
    sha: string,
    numKeys: number,
    keysAndArgs: KeysAndArgs,
    k: ShardKeys,
    h: HeartbeatWrite,
    policy: HeartbeatPolicy,
  ): HeartbeatTemplate | null {
    const probe = { ...h, ...SENTINEL };
    const args = keysAndArgs(k, probe, policy, SENTINEL.now, false);
    const nulls = keysAndArgs(k, { ...probe, gpu: null, gpuMem: null }, policy, SENTINEL.now, false);
    if (nulls.length !== args.length) return null;
    const at = new Map<number, Field>();
    for (const field of FIELDS) {
      const positions = args.flatMap((a, i) => (a === SENTINEL[field] ? [i] : []));
      if (positions.length !== 1 || positions[0]! < numKeys) return null;
      at.set(positions[0]!, field);
    }
    const nullArg = new Map<Field, Buffer>();
    for (const [i, field] of at) {
      if (!NULLABLE.has(field)) continue;
      const v = nulls[i]!;
      if (v !== '') return null; // only the empty string is templated
      nullArg.set(field, EMPTY_BULK);
    }
    // constant runs between the figures, each encoded once (the command's header before the first)
    const segments: Buffer[] = [];
    const fields: Field[] = [];
    let run = `*${args.length + 3}\r\n${bulk('evalsha')}${bulk(sha)}${bulk(numberText(numKeys))}`;
    for (let i = 0; i < args.length; i++) {
      const field = at.get(i);
      const a = args[i]!;
      if (field === undefined) {
        run += bulk(typeof a === 'number' ? numberText(a) : a);
        continue;
      }
      segments.push(Buffer.from(run, 'utf8'));
      run = '';
      fields.push(field);
    }
    segments.push(Buffer.from(run, 'utf8'));
    const constantBytes = segments.reduce((n, s) => n + s.length, 0);
    return new HeartbeatTemplate(
      h.svc,
      h.lang,
      h.models,
      h.anyReady,
      segments,
      fields,
      nullArg,
      constantBytes,
    );
  }

  /** True when `h` has the parts this template was built with. */
  fits(h: HeartbeatWrite): boolean {
    return (
      h.svc === this.svc && h.lang === this.lang && h.models === this.models && h.anyReady === this.anyReady
    );
  }

  /** The EVALSHA bytes of `h` at `nowMs`, as encodeEvalsha(heartbeatKeysAndArgs(…, false)) writes them. */
  encode(h: HeartbeatWrite, nowMs: number): Buffer {
    const fields = this.fields;
    let size = this.constantBytes;
    // a figure's text: digits written in place for non-negative safe integers, else String()
    let texts: (string | null)[] | null = null;
    for (let f = 0; f < fields.length; f++) {
      const v = value(h, fields[f]!, nowMs);
      if (v === null) size += this.nullArg.get(fields[f]!)!.length;
      else if (Number.isSafeInteger(v) && v >= 0) {
        const d = digitCount(v);
        size += 1 + digitCount(d) + 2 + d + 2;
      } else {
        texts ??= Array.from({ length: fields.length }, () => null);
        const t = numberText(v);
        texts[f] = t;
        size += 1 + digitCount(t.length) + 2 + t.length + 2;
      }
    }
    const buf = Buffer.allocUnsafe(size);
    let at = 0;
    for (let f = 0; f < fields.length; f++) {
      at += this.segments[f]!.copy(buf, at);
      const v = value(h, fields[f]!, nowMs);
      if (v === null) {
        at += this.nullArg.get(fields[f]!)!.copy(buf, at);
        continue;
      }
      const t = texts?.[f] ?? null;
      buf[at++] = DOLLAR;
      if (t === null) {
        const d = digitCount(v);
        at = writeDigits(buf, at, d, digitCount(d));
        buf[at++] = CR;
        buf[at++] = LF;
        at = writeDigits(buf, at, v, d);
      } else {
        at = writeDigits(buf, at, t.length, digitCount(t.length));
        buf[at++] = CR;
        buf[at++] = LF;
        at += buf.write(t, at, 'latin1');
      }
      buf[at++] = CR;
      buf[at++] = LF;
    }
    this.segments[fields.length]!.copy(buf, at);
    return buf;
  }
}

function value(h: HeartbeatWrite, field: Field, nowMs: number): number | null {
  switch (field) {
    case 'timestamp':
      return h.timestamp;
    case 'now':
      return nowMs;
    case 'cpu':
      return h.cpu;
    case 'gpu':
      return h.gpu;
    case 'gpuMem':
      return h.gpuMem;
    case 'mem':
      return h.mem;
    case 'running':
      return h.running;
  }
}

/** RESP bulk string of `s` (its length in UTF-8 bytes). */
function bulk(s: string): string {
  return `$${Buffer.byteLength(s, 'utf8')}\r\n${s}\r\n`;
}
