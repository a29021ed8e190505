import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { readTextFrames } from '../../services/gateway/frame-reader.ts';

/**
 * The node socket's frame reader (services/gateway/frame-reader.ts) held to ws itself: the same
 * bytes, cut into reads anywhere, sent to a ws server with the reader and to one without give
 * the same events in the same order (messages, pings, errors, close codes), whatever the frames:
 * text, binary, fragmented, control frames between fragments, invalid UTF-8, unmasked, RSV
 * bits, 64-bit lengths, payloads over maxPayload.
 */

const MAX_PAYLOAD = 4096;

interface Server {
  port: number;
  /** each connection's events, in order */
  logs: string[][];
  /** frames the reader handed over (the reader server) */
  read: number;
  close(): Promise<void>;
}

async function server(withReader: boolean): Promise<Server> {
  const wss = new WebSocketServer({ port: 0, maxPayload: MAX_PAYLOAD });
  await new Promise((resolve) => wss.once('listening', resolve));
  const s: Server = {
    port: (wss.address() as net.AddressInfo).port,
    logs: [],
    read: 0,
    close: () => new Promise((resolve) => wss.close(() => resolve())),
  };
  wss.on('connection', (ws: WebSocket) => {
    const log: string[] = [];
    s.logs.push(log);
    ws.on('message', (data, isBinary) =>
      log.push(`${isBinary ? 'binary' : 'text'} ${Buffer.from(data as Buffer).toString('hex')}`),
    );
    if (withReader) {
      const installed = readTextFrames(ws, (payload) => {
        s.read++;
        log.push(`text ${payload.toString('hex')}`);
      });
      expect(installed).toBe(true);
    }
    ws.on('ping', (data) => log.push(`ping ${data.toString('hex')}`));
    ws.on('error', (err: Error & { code?: string }) => log.push(`error ${err.code}`));
    ws.on('close', (code) => log.push(`close ${code}`));
  });
  return s;
}

/** One client frame: masked with a random key unless `unmasked`. */
function frame(
  opcode: number,
  payload: Buffer,
  o: {
    fin?: boolean;
    unmasked?: boolean;
    rsv?: number;
    long?: boolean;
    zeroMask?: boolean;
    mask?: Buffer;
  } = {},
): Buffer {
  const n = payload.length;
  const b0 = ((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode;
  const maskBit = o.unmasked ? 0 : 0x80;
  let head: Buffer;
  if (o.long) {
    head = Buffer.alloc(10);
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  } else if (n < 126) head = Buffer.from([0, maskBit | n]);
  else {
    head = Buffer.from([0, maskBit | 126, n >> 8, n & 0xff]);
  }
  head[0] = b0;
  if (o.unmasked) return Buffer.concat([head, payload]);
  const mask = o.mask ?? (o.zeroMask ? Buffer.alloc(4) : randomBytes(4));
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

const text = (s: string) => Buffer.from(s, 'utf8');
const closeFrame = frame(0x8, Buffer.from([0x03, 0xe8]));

/** Connects, upgrades, writes `chunks` one read apart as far as TCP lets, then a close frame. */
async function send(port: number, chunks: Buffer[]): Promise<void> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => undefined); // the server may close first (a protocol error)
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await new Promise((resolve) => socket.once('connect', resolve));
  const key = randomBytes(16).toString('base64');
  socket.write(
    `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  let head = '';
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
  });
  expect(head).toContain(accept);
  socket.resume();
  for (const chunk of chunks) {
    if (socket.destroyed) break;
    socket.write(chunk);
    await new Promise((r) => setTimeout(r, 1));
  }
  if (!socket.destroyed) socket.write(closeFrame);
  await new Promise((r) => setTimeout(r, 20));
  socket.end();
  await closed;
}

async function settled(s: Server, index: number): Promise<string[]> {
  for (let i = 0; i < 200 && !(s.logs[index]?.some((e) => e.startsWith('close')) ?? false); i++)
    await new Promise((r) => setTimeout(r, 5));
  return s.logs[index] ?? [];
}

/** The frames a test sequence is made of. */
const utf8Text = fc.string({ unit: 'binary', maxLength: 200 }).map(text);
const frameArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 8, arbitrary: utf8Text.map((p) => frame(0x1, p)) },
  { weight: 2, arbitrary: fc.integer({ min: 126, max: 1500 }).map((n) => frame(0x1, text('é'.repeat(n)))) },
  { weight: 1, arbitrary: fc.integer({ min: 4000, max: 4200 }).map((n) => frame(0x1, text('x'.repeat(n)))) },
  { weight: 1, arbitrary: utf8Text.map((p) => frame(0x1, p, { zeroMask: true })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((p) => frame(0x2, Buffer.from(p))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 20 }).map((p) => frame(0x9, Buffer.from(p))) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(utf8Text, utf8Text, fc.boolean())
      .map(([a, b, ping]) =>
        Buffer.concat([
          frame(0x1, a, { fin: false }),
          ping ? frame(0x9, text('p')) : Buffer.alloc(0),
          frame(0x0, b),
        ]),
      ),
  },
  // a fragmented message left open: a text frame after it is a protocol error (1002)
  { weight: 1, arbitrary: utf8Text.map((p) => frame(0x1, p, { fin: false })) },
  { weight: 1, arbitrary: fc.constant(frame(0x1, Buffer.from([0x61, 0xff, 0x62]))) },
  { weight: 1, arbitrary: fc.constant(frame(0x1, text('{"a":1}'), { unmasked: true })) },
  { weight: 1, arbitrary: fc.constant(frame(0x1, text('{"a":1}'), { rsv: 2 })) },
  { weight: 1, arbitrary: fc.constant(frame(0x1, text('{"a":1}'), { long: true })) },
  { weight: 1, arbitrary: fc.constant(frame(0x0, text('orphan'))) },
);

/** The bytes of `frames` cut at `cuts` (fractions of the length), and between frames when `between`. */
function cut(frames: Buffer[], cuts: number[], between: boolean): Buffer[] {
  const all = Buffer.concat(frames);
  const bounds: number[] = [];
  if (between) frames.reduce((end, f) => (bounds.push(end + f.length), end + f.length), 0);
  const at = [...new Set([...bounds, ...cuts.map((c) => Math.floor(c * all.length))])].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const to of at) {
    if (to > from) chunks.push(all.subarray(from, to));
    from = Math.max(from, to);
  }
  if (from < all.length) chunks.push(all.subarray(from));
  return chunks;
}

describe('frame reader: the same events as ws', () => {
  let plain: Server;
  let reader: Server;
  let connections = 0;
  beforeAll(async () => {
    plain = await server(false);
    reader = await server(true);
  });
  afterAll(async () => {
    await plain.close();
    await reader.close();
  });

  async function compare(chunks: Buffer[]): Promise<string[]> {
    const index = connections++;
    await Promise.all([send(plain.port, chunks), send(reader.port, chunks)]);
    const expected = await settled(plain, index);
    expect(await settled(reader, index)).toEqual(expected);
    return expected;
  }

  it('frames cut anywhere: same messages, pings, errors and close codes', async () => {
    const before = reader.read;
    await fc.assert(
      fc.asyncProperty(
        fc.array(frameArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
        fc.boolean(),
        async (frames, cuts, between) => {
          await compare(cut(frames, cuts, between));
        },
      ),
      { numRuns: 120 },
    );
    // the reader did read (else this compares ws with itself)
    expect(reader.read - before).toBeGreaterThan(50);
  });

  it('a frame split across reads is held and read whole; invalid UTF-8 is still 1007', async () => {
    const hb = frame(0x1, text(`{"type":"node_heartbeat","x":"${'é'.repeat(300)}"}`));
    const before = reader.read;
    const log = await compare([hb.subarray(0, 1), hb.subarray(1, 3), hb.subarray(3, 500), hb.subarray(500)]);
    expect(log[0]).toMatch(/^text 7b22/);
    expect(reader.read - before).toBe(1);
    // ws holds the first byte of a frame it reads; the next read looks like a whole text frame
    // (0x81, then 0x80: masked, empty) but is the rest of the binary one
    const bin = frame(0x2, Buffer.from([7]), { mask: Buffer.from([0x80, 1, 2, 3]) });
    expect(bin[1]).toBe(0x81);
    expect(await compare([bin.subarray(0, 1), bin.subarray(1), frame(0x1, text('after'))])).toEqual([
      'binary 07',
      `text ${text('after').toString('hex')}`,
      'close 1000',
    ]);
    const bad = await compare([frame(0x1, text('ok')), frame(0x1, Buffer.from([0xc3, 0x28]))]);
    expect(bad.slice(0, 2)).toEqual([`text ${text('ok').toString('hex')}`, 'error WS_ERR_INVALID_UTF8']);
  });
});
