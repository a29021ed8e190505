import { isUtf8 } from 'node:buffer';
import type { WebSocket } from 'ws';

/**
 * A node socket's common frames read straight off the received bytes, in front of ws's
 * Receiver (issue 13 deliverable 1). ws spends ~0.9 KB of heap on every frame, however small:
 * five Buffer views (the header's two bytes, the 16-bit length, the mask, the payload, each
 * with the remainder of the chunk re-viewed), a fragments array, the message emitted twice
 * (Receiver, then WebSocket) — measured with bench/alloc/heap-profile.ts. Here a frame costs
 * one view of its payload.
 *
 * What is read here: a whole frame at a frame boundary that is FIN, text, without RSV bits,
 * masked, with a 7- or 16-bit length within ws's maxPayload, whose unmasked payload is valid
 * UTF-8 — what a node sends. Everything else (control frames, fragments, binary frames, a frame
 * split across reads, anything invalid) and everything after it in the same read goes to ws's
 * Receiver as before, which answers it exactly as it did (1002, 1007, 1009, ping/pong, close).
 * A frame is read here only while the Receiver is idle at a frame boundary (nothing buffered,
 * no fragmented message open, events synchronous) and the socket is OPEN, so frames are
 * delivered in order whoever reads them. A payload that is not valid UTF-8 is masked again
 * and handed over: ws closes with 1007 as before.
 *
 * It reads ws's Receiver state (ws 8.x: `_state`, `_bufferedBytes`, `_fragmented`,
 * `_maxPayload`, `_allowSynchronousEvents`): when those are not what it expects (another ws
 * version), it is not installed and ws reads every frame. test/unit/frame-reader.test.ts holds
 * it to ws's own answers.
 */

/** ws's Receiver fields this reads (lib/receiver.js). */
interface ReceiverState {
  _state: number;
  _bufferedBytes: number;
  _fragmented: number;
  _maxPayload: number;
  _allowSynchronousEvents: boolean;
  writable: boolean;
  write(chunk: Buffer): boolean;
}

/** ws's Receiver state between frames (GET_INFO). */
const GET_INFO = 0;
const OPEN = 1;
/** FIN + text opcode, no RSV bits. */
const FIN_TEXT = 0x81;
const MASKED = 0x80;

function receiverOf(ws: WebSocket): ReceiverState | null {
  const r = (ws as unknown as { _receiver?: Partial<ReceiverState> })._receiver;
  if (
    !r ||
    typeof r._state !== 'number' ||
    typeof r._bufferedBytes !== 'number' ||
    typeof r._fragmented !== 'number' ||
    typeof r._maxPayload !== 'number' ||
    r._allowSynchronousEvents !== true ||
    typeof r.write !== 'function'
  )
    return null;
  return r as ReceiverState;
}

function xorMask(buf: Buffer, at: number, end: number, maskAt: number): void {
  const m0 = buf[maskAt]!;
  const m1 = buf[maskAt + 1]!;
  const m2 = buf[maskAt + 2]!;
  const m3 = buf[maskAt + 3]!;
  if ((m0 | m1 | m2 | m3) === 0) return;
  let i = at;
  for (; i + 3 < end; i += 4) {
    buf[i] = buf[i]! ^ m0;
    buf[i + 1] = buf[i + 1]! ^ m1;
    buf[i + 2] = buf[i + 2]! ^ m2;
    buf[i + 3] = buf[i + 3]! ^ m3;
  }
  for (let k = 0; i < end; i++, k++) buf[i] = buf[i]! ^ buf[maskAt + k]!;
}

/** Returned by frameEnd: the bytes so far begin a frame read here, the rest not arrived. */
const INCOMPLETE = -1;
/** Returned by frameEnd: not a frame read here (ws reads it). */
const NOT_OURS = -2;

/**
 * End of the frame at `at` when it is one read here and whole in `chunk`; INCOMPLETE when the
 * bytes so far begin one; NOT_OURS otherwise.
 */
function frameEnd(chunk: Buffer, at: number, maxPayload: number): number {
  const n = chunk.length;
  if (chunk[at] !== FIN_TEXT) return NOT_OURS;
  if (at + 2 > n) return INCOMPLETE;
  const b1 = chunk[at + 1]!;
  if ((b1 & MASKED) === 0) return NOT_OURS;
  let length = b1 & 0x7f;
  let header = 2;
  if (length === 127) return NOT_OURS;
  if (length === 126) {
    if (at + 4 > n) return INCOMPLETE;
    length = (chunk[at + 2]! << 8) | chunk[at + 3]!;
    header = 4;
  }
  if (maxPayload > 0 && length > maxPayload) return NOT_OURS;
  const end = at + header + 4 + length;
  return end > n ? INCOMPLETE : end;
}

/**
 * Reads `ws`'s common text frames (see above) and hands each payload to `onText`, synchronously,
 * in order with the frames ws still emits as 'message'. A frame read here that a read splits is
 * held (at most one frame, ≤ 64 KiB) until its rest arrives. False when not installed.
 */
export function readTextFrames(ws: WebSocket, onText: (payload: Buffer) => void): boolean {
  const receiver = receiverOf(ws);
  if (receiver === null) return false;
  const wsWrite = receiver.write.bind(receiver);
  const maxPayload = receiver._maxPayload;
  /** The start of a frame read here whose rest has not arrived (ws has seen none of it). */
  let pending: Buffer | null = null;
  receiver.write = (received: Buffer): boolean => {
    const chunk = pending === null ? received : Buffer.concat([pending, received]);
    pending = null;
    const n = chunk.length;
    let at = 0;
    while (
      at < n &&
      ws.readyState === OPEN &&
      receiver.writable &&
      receiver._state === GET_INFO &&
      receiver._bufferedBytes === 0 &&
      receiver._fragmented === 0
    ) {
      const end = frameEnd(chunk, at, maxPayload);
      if (end === NOT_OURS) break;
      if (end === INCOMPLETE) {
        pending = at === 0 ? chunk : chunk.subarray(at);
        return true;
      }
      const maskAt = (chunk[at + 1]! & 0x7f) === 126 ? at + 4 : at + 2;
      const start = maskAt + 4;
      xorMask(chunk, start, end, maskAt);
      const payload = chunk.subarray(start, end);
      if (!isUtf8(payload)) {
        xorMask(chunk, start, end, maskAt); // as received: ws answers it (1007)
        break;
      }
      at = end;
      onText(payload);
    }
    if (at === n) return true;
    return wsWrite(at === 0 ? chunk : chunk.subarray(at));
  };
  return true;
}
