/**
 * A heartbeat frame read straight off its bytes, without JSON.parse (issue 13 deliverable 1):
 * the core fields (`type`, `node_id`, `timestamp`, `resource_usage`) parsed by hand, every
 * other top-level member (capabilities, metrics) located as a byte span only. The caller
 * (services/gateway/heartbeat-memo.ts) accepts the frame only when those spans are
 * byte-identical to the ones of the node's last heartbeat that JSON.parse and the zod schema
 * accepted on this socket: identical bytes are identical values, already validated.
 *
 * It never decides that a frame is invalid: it answers false for anything unusual (a syntax
 * error, an escape in a key or in the core strings, a number in a form it does not read, a
 * duplicate or unknown core field, more members than it records), and the caller then takes
 * the full path, JSON.parse and zod, which accepts the frame or refuses it with the error
 * naming the field exactly as before. Measured (bench/alloc.ts): the text conversion and
 * JSON.parse of the bench's 714-byte frame allocate ~1.9 KB; this, nothing for integer and
 * short decimal load figures. test/unit/heartbeat-scan.test.ts holds it to JSON.parse + zod.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const ZERO = 0x30;
const NINE = 0x39;
const DOT = 0x2e;

/** Top-level members other than the core ones that one scan records; beyond, the full path. */
export const MAX_REST_MEMBERS = 32;

/** Exact powers of ten for the fast decimal conversion (10^0 … 10^22 are exact doubles). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** What one scan found. Reused from scan to scan (read it before the next one). */
export class HeartbeatScan {
  nodeIdStart = 0;
  nodeIdEnd = 0;
  timestamp = 0;
  cpu = 0;
  gpu: number | null = null;
  gpuMem: number | null = null;
  mem = 0;
  running = 0;
  /** The other top-level members, each from its key's opening quote to the end of its value. */
  restCount = 0;
  readonly restStart = new Int32Array(MAX_REST_MEMBERS);
  readonly restEnd = new Int32Array(MAX_REST_MEMBERS);
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(buf: Buffer, i: number): number {
  while (i < buf.length && isSpace(buf[i]!)) i++;
  return i;
}

/** End (after the closing quote) of a string starting at `i` with no escape or control byte; -1 otherwise. */
function plainStringEnd(buf: Buffer, i: number): number {
  if (buf[i] !== QUOTE) return -1;
  for (let j = i + 1; j < buf.length; j++) {
    const c = buf[j]!;
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH || c < 0x20) return -1;
  }
  return -1;
}

/** True when buf[start, end) holds the ASCII text `s` exactly. */
function bytesAre(buf: Buffer, start: number, end: number, s: string): boolean {
  if (end - start !== s.length) return false;
  for (let k = 0; k < s.length; k++) if (buf[start + k] !== s.charCodeAt(k)) return false;
  return true;
}

/**
 * End of the JSON value starting at `i`, for values the caller compares byte by byte with a
 * validated one (it finds the right end of any valid value; it does not validate). -1 when the
 * text ends first.
 */
function valueEnd(buf: Buffer, i: number): number {
  const c = buf[i];
  if (c === undefined) return -1;
  if (c === QUOTE) {
    for (let j = i + 1; j < buf.length; j++) {
      const d = buf[j]!;
      if (d === BACKSLASH) j++;
      else if (d === QUOTE) return j + 1;
    }
    return -1;
  }
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0;
    for (let j = i; j < buf.length; j++) {
      const d = buf[j]!;
      if (d === QUOTE) {
        for (j++; j < buf.length && buf[j] !== QUOTE; j++) if (buf[j] === BACKSLASH) j++;
        if (j >= buf.length) return -1;
      } else if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++;
      else if (d === CLOSE_BRACE || d === CLOSE_BRACKET) {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  let j = i;
  while (j < buf.length) {
    const d = buf[j]!;
    if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || isSpace(d)) break;
    j++;
  }
  return j > i ? j : -1;
}

/** The number read by the last readNumber (a module-level slot: no object per number). */
let numberValue = 0;

/**
 * A non-negative JSON number at `i` (`0`, `12`, `12.5`, `1e3`: JSON's grammar, no sign) into
 * `numberValue`, exactly as JSON.parse reads it; returns its end, or -1 (not such a number).
 * Up to 15 significant digits without exponent are converted by hand (an integer below 2^53
 * divided by an exact power of ten: IEEE division rounds correctly, as JSON.parse does); any
 * other form by Number() on its text, which reads numbers as JSON.parse does.
 */
function readNumber(buf: Buffer, i: number): number {
  let j = i;
  let mantissa = 0;
  let digits = 0;
  const first = buf[j];
  if (first === undefined || first < ZERO || first > NINE) return -1;
  if (first === ZERO) {
    j++;
    const next = buf[j];
    if (next !== undefined && next >= ZERO && next <= NINE) return -1; // leading zero
  } else {
    while (j < buf.length && buf[j]! >= ZERO && buf[j]! <= NINE) {
      mantissa = mantissa * 10 + (buf[j]! - ZERO);
      digits++;
      j++;
    }
  }
  let fraction = 0;
  if (buf[j] === DOT) {
    j++;
    const start = j;
    while (j < buf.length && buf[j]! >= ZERO && buf[j]! <= NINE) {
      mantissa = mantissa * 10 + (buf[j]! - ZERO);
      digits++;
      j++;
    }
    fraction = j - start;
    if (fraction === 0) return -1;
  }
  let exponent = false;
  if (buf[j] === 0x65 || buf[j] === 0x45) {
    exponent = true;
    j++;
    if (buf[j] === 0x2b || buf[j] === 0x2d) j++;
    const start = j;
    while (j < buf.length && buf[j]! >= ZERO && buf[j]! <= NINE) j++;
    if (j === start) return -1;
  }
  if (!exponent && digits <= 15 && fraction <= 22)
    numberValue = fraction ? mantissa / POW10[fraction]! : mantissa;
  else numberValue = Number(buf.toString('latin1', i, j));
  return j;
}

const percent = (v: number): boolean => v >= 0 && v <= 100;

// bits of the core fields seen
const TYPE = 1;
const NODE_ID = 2;
const TIMESTAMP = 4;
const USAGE = 8;
const ALL = TYPE | NODE_ID | TIMESTAMP | USAGE;
const CPU = 1;
const GPU = 2;
const GPU_MEM = 4;
const MEM = 8;
const RUNNING = 16;

/**
 * `resource_usage`'s object at `i` into `s`, the same checks as the schema (percentages 0–100,
 * gpu ones nullable or absent, running_jobs an integer 0–100000); any other member: -1.
 */
function scanUsage(buf: Buffer, i: number, s: HeartbeatScan): number {
  if (buf[i] !== OPEN_BRACE) return -1;
  let seen = 0;
  s.gpu = null;
  s.gpuMem = null;
  i = skipSpace(buf, i + 1);
  if (buf[i] === CLOSE_BRACE) return -1;
  for (;;) {
    const keyEnd = plainStringEnd(buf, i);
    if (keyEnd < 0) return -1;
    const k0 = i + 1;
    const k1 = keyEnd - 1;
    i = skipSpace(buf, keyEnd);
    if (buf[i] !== COLON) return -1;
    i = skipSpace(buf, i + 1);
    let bit: number;
    if (bytesAre(buf, k0, k1, 'cpu_percent')) bit = CPU;
    else if (bytesAre(buf, k0, k1, 'gpu_percent')) bit = GPU;
    else if (bytesAre(buf, k0, k1, 'gpu_mem_percent')) bit = GPU_MEM;
    else if (bytesAre(buf, k0, k1, 'mem_percent')) bit = MEM;
    else if (bytesAre(buf, k0, k1, 'running_jobs')) bit = RUNNING;
    else return -1;
    if (seen & bit) return -1;
    seen |= bit;
    if ((bit === GPU || bit === GPU_MEM) && bytesAre(buf, i, i + 4, 'null')) {
      i += 4;
    } else {
      i = readNumber(buf, i);
      if (i < 0) return -1;
      const v = numberValue;
      if (bit === RUNNING) {
        if (!Number.isSafeInteger(v) || v > 100000) return -1;
        s.running = v;
      } else {
        if (!percent(v)) return -1;
        if (bit === CPU) s.cpu = v;
        else if (bit === GPU) s.gpu = v;
        else if (bit === GPU_MEM) s.gpuMem = v;
        else s.mem = v;
      }
    }
    i = skipSpace(buf, i);
    if (buf[i] === COMMA) {
      i = skipSpace(buf, i + 1);
      continue;
    }
    if (buf[i] !== CLOSE_BRACE) return -1;
    return (seen & (CPU | MEM | RUNNING)) === (CPU | MEM | RUNNING) ? i + 1 : -1;
  }
}

/**
 * Scans a heartbeat frame into `s`. True only for a JSON object whose core fields are all
 * present once, plain and valid (`type` "node_heartbeat", `node_id` a string without escapes,
 * `timestamp` a safe non-negative integer, `resource_usage` as the schema wants it with no other
 * member) and whose other members are well delimited and have keys without escapes. The node id
 * is NOT checked against its pattern: the caller compares its bytes with the socket's node.
 */
export function scanHeartbeat(buf: Buffer, s: HeartbeatScan): boolean {
  let i = skipSpace(buf, 0);
  if (buf[i] !== OPEN_BRACE) return false;
  i = skipSpace(buf, i + 1);
  let seen = 0;
  s.restCount = 0;
  if (buf[i] === CLOSE_BRACE) return false;
  for (;;) {
    const memberStart = i;
    const keyEnd = plainStringEnd(buf, i);
    if (keyEnd < 0) return false;
    const k0 = i + 1;
    const k1 = keyEnd - 1;
    i = skipSpace(buf, keyEnd);
    if (buf[i] !== COLON) return false;
    i = skipSpace(buf, i + 1);
    let bit = 0;
    if (bytesAre(buf, k0, k1, 'type')) bit = TYPE;
    else if (bytesAre(buf, k0, k1, 'node_id')) bit = NODE_ID;
    else if (bytesAre(buf, k0, k1, 'timestamp')) bit = TIMESTAMP;
    else if (bytesAre(buf, k0, k1, 'resource_usage')) bit = USAGE;
    if (seen & bit) return false;
    seen |= bit;
    if (bit === TYPE) {
      const end = plainStringEnd(buf, i);
      if (end < 0 || !bytesAre(buf, i + 1, end - 1, 'node_heartbeat')) return false;
      i = end;
    } else if (bit === NODE_ID) {
      const end = plainStringEnd(buf, i);
      if (end < 0) return false;
      s.nodeIdStart = i + 1;
      s.nodeIdEnd = end - 1;
      i = end;
    } else if (bit === TIMESTAMP) {
      i = readNumber(buf, i);
      if (i < 0 || !Number.isSafeInteger(numberValue)) return false;
      s.timestamp = numberValue;
    } else if (bit === USAGE) {
      i = scanUsage(buf, i, s);
      if (i < 0) return false;
    } else {
      const end = valueEnd(buf, i);
      if (end < 0 || s.restCount === MAX_REST_MEMBERS) return false;
      s.restStart[s.restCount] = memberStart;
      s.restEnd[s.restCount++] = end;
      i = end;
    }
    i = skipSpace(buf, i);
    if (buf[i] === COMMA) {
      i = skipSpace(buf, i + 1);
      continue;
    }
    if (buf[i] !== CLOSE_BRACE) return false;
    return seen === ALL && skipSpace(buf, i + 1) === buf.length;
  }
}
