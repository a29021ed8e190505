import { SwitchboardError } from '../errors.ts';

/**
 * Untrusted JSON (node frames, HTTP bodies) parsed with a bound on its nesting depth, before
 * anything else touches it: a 10 KB text of 5,000 nested arrays parses, but then overflows the
 * stack of whatever walks it (JSON.stringify, zod, the canonical form). Past the bound the
 * message is INVALID_MESSAGE naming the problem; nothing of it is echoed.
 */

/** Deepest nesting of arrays/objects accepted (PROTOCOL.md "Limits"). */
export const MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * True when a JSON text nests deeper than `limit` (strings skipped). A text with at most `limit`
 * opening brackets, inside strings or not, cannot: they are counted first with the engine's
 * native search, which settles every ordinary frame (a heartbeat has ~25) without walking it
 * character by character in JavaScript. Only a text with more is scanned, stopping as soon as
 * the depth exceeds `limit`.
 */
export function jsonDepthExceeds(text: string, limit = MAX_JSON_DEPTH): boolean {
  let opens = 0;
  for (let i = text.indexOf('{'); i !== -1 && opens <= limit; i = text.indexOf('{', i + 1)) opens++;
  for (let i = text.indexOf('['); i !== -1 && opens <= limit; i = text.indexOf('[', i + 1)) opens++;
  if (opens <= limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return false;
}

/**
 * Parses a node frame or HTTP body (`what`: "frame" or "body"); throws INVALID_MESSAGE when it is
 * nested deeper than MAX_JSON_DEPTH or is not JSON.
 */
export function parseJsonMessage(text: string, what: 'frame' | 'body'): unknown {
  if (jsonDepthExceeds(text)) {
    throw new SwitchboardError(
      'INVALID_MESSAGE',
      `${what}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new SwitchboardError('INVALID_MESSAGE', `${what} is not valid JSON`);
  }
}

/**
 * A short description of an untrusted value for an error message: a string quoted and cut at
 * 64 characters, a number or boolean as is, anything else by its kind (never serialised).
 */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? 'an array' : `a value of type ${typeof value}`;
}
