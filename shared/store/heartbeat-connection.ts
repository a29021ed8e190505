import net from 'node:net';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

/**
 * The heartbeat's own Redis connection (issue 13 deliverable 1): ONE socket beside the gateway's
 * ioredis client that carries only the prebuilt recordHeartbeat EVALSHAs (script-command.ts,
 * heartbeat-command.ts) and parses only their replies. ioredis spends ~2.4 KB of heap on every
 * command whatever it is (its Command object, three closures and a promise, the queue entry,
 * the reply's buffers converted to strings, one socket write each): measured with bench/alloc.ts,
 * a PING costs ~2.9 KB on it. Here a command is its bytes, one promise and three array slots;
 * the commands of one turn of the event loop leave in one socket write, and a reply is read
 * straight off the received bytes.
 *
 * It is only an accelerator: the store sends through it while it is `ready` and through ioredis
 * otherwise (before its handshake answered, after any error, on Cluster, TLS or a unix socket,
 * where it is never used). Errors are ioredis's own messages, so they map to the same answers
 * (`Command timed out` and `Connection is closed.`: 503 SCHEDULER_DEPENDENCY_DOWN; `NOSCRIPT …`:
 * the store loads the script through ioredis). A command without an answer within the client's
 * `commandTimeout` fails as it would on ioredis (its late reply is dropped when it comes); a
 * closed socket fails everything in flight, and the connection is made anew by itself.
 */

export type ReplyValue = number | string | null | Error | ReplyValue[];

const CR = 0x0d;
/** Nothing answers the handshake's PING within this: drop and try again. */
const HANDSHAKE_TIMEOUT_MS = 2000;
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 2000;

export class HeartbeatConnection {
  private socket: net.Socket | null = null;
  private state: 'connecting' | 'ready' | 'down' | 'closed' = 'down';
  private readonly resolvers: ((value: ReplyValue) => void)[] = [];
  private readonly rejecters: ((err: Error) => void)[] = [];
  private readonly deadlines: number[] = [];
  private head = 0;
  private outbox: Buffer[] = [];
  private flushScheduled = false;
  private leftover: Buffer | null = null;
  private timer: NodeJS.Timeout | undefined;
  private retries = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly target: { host: string; port: number; username?: string; password?: string; db: number },
    private readonly name: string,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** A connection beside `client` to the same server, or null where it is not used. */
  static beside(client: unknown, name: string, log: Logger): HeartbeatConnection | null {
    if (typeof client !== 'object' || client === null || ('isCluster' in client && client.isCluster))
      return null;
    const o = (client as Redis).options;
    if (!o || o.tls || o.path || typeof o.port !== 'number' || !o.host) return null;
    const conn = new HeartbeatConnection(
      { host: o.host, port: o.port, username: o.username, password: o.password, db: o.db ?? 0 },
      name,
      typeof o.commandTimeout === 'number' ? o.commandTimeout : 0,
      log,
    );
    conn.connect();
    return conn;
  }

  /** The handshake answered and nothing failed since: `send` may be used. */
  get ready(): boolean {
    return this.state === 'ready';
  }

  /** Commands sent and not answered yet (tests). */
  get pending(): number {
    return this.resolvers.length - this.head;
  }

  /** Sends one RESP command (only while `ready`); its reply, or its error as a rejection. */
  send(command: Buffer): Promise<ReplyValue> {
    return new Promise((resolve, reject) => this.enqueue(command, resolve, reject));
  }

  /**
   * `send` with callbacks instead of a promise (heartbeat-call.ts): one of them is called, from
   * the read loop, the sweep or a close; neither may throw. Only while `ready`.
   */
  sendTo(command: Buffer, resolve: (v: ReplyValue) => void, reject: (e: Error) => void): void {
    this.enqueue(command, resolve, reject);
  }

  close(): void {
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    clearInterval(this.timer);
    this.timer = undefined;
    this.fail(new Error('Connection is closed.'));
    this.socket?.destroy();
    this.socket = null;
  }

  private enqueue(command: Buffer, resolve: (v: ReplyValue) => void, reject: (e: Error) => void): void {
    if (this.state !== 'ready') {
      reject(new Error('Connection is closed.'));
      return;
    }
    this.resolvers.push(resolve);
    this.rejecters.push(reject);
    this.deadlines.push(this.timeoutMs > 0 ? performance.now() + this.timeoutMs : Infinity);
    this.outbox.push(command);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  /** The commands of this turn of the event loop, in one write. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    const out = this.outbox;
    if (out.length === 0 || !this.socket) return;
    this.outbox = [];
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  };

  private connect(): void {
    this.state = 'connecting';
    const socket = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
    this.socket = socket;
    socket.unref();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'heartbeat connection error'));
    socket.on('close', () => this.onClose(socket));
    const t = this.target;
    const handshake: Buffer[] = [];
    if (t.password)
      handshake.push(encode(t.username ? ['AUTH', t.username, t.password] : ['AUTH', t.password]));
    if (t.db) handshake.push(encode(['SELECT', String(t.db)]));
    handshake.push(encode(['CLIENT', 'SETNAME', `sb:${this.name}`]));
    const started = performance.now();
    let failed = false;
    const refused = (err: Error) => {
      if (failed) return;
      failed = true;
      this.log.debug({ err: err.message }, 'heartbeat connection handshake refused');
      socket.destroy();
    };
    for (const command of handshake) this.enqueueRaw(command, started + HANDSHAKE_TIMEOUT_MS, noop, refused);
    // ready once the last handshake command answered (Redis answers in order)
    this.enqueueRaw(
      encode(['PING']),
      started + HANDSHAKE_TIMEOUT_MS,
      () => {
        if (failed || this.socket !== socket || this.state !== 'connecting') return;
        this.state = 'ready';
        this.retries = 0;
      },
      refused,
    );
    this.startSweep();
  }

  private enqueueRaw(
    command: Buffer,
    deadline: number,
    resolve: (v: ReplyValue) => void,
    reject: (e: Error) => void,
  ): void {
    this.resolvers.push(resolve);
    this.rejecters.push(reject);
    this.deadlines.push(deadline);
    this.outbox.push(command);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private startSweep(): void {
    if (this.timer) return;
    const period = Math.max(1, Math.min(250, Math.floor((this.timeoutMs || HANDSHAKE_TIMEOUT_MS) / 4)));
    this.timer = setInterval(() => this.sweep(), period);
    this.timer.unref();
  }

  /**
   * Fails every unanswered command past its deadline with ioredis's "Command timed out", as its
   * per-command timer would: only those (a gateway whose event loop was late must not fail the
   * commands behind them too). Their replies, when they come, are read and dropped: Redis
   * answers in order. A handshake past its deadline drops the socket (`refused`).
   */
  sweep(now = performance.now()): void {
    const resolvers = this.resolvers;
    for (let i = this.head; i < resolvers.length; i++) {
      if (resolvers[i] === expired) continue;
      if (this.deadlines[i]! > now) break;
      const reject = this.rejecters[i]!;
      resolvers[i] = expired;
      this.rejecters[i] = expired;
      reject(new Error('Command timed out'));
    }
  }

  private onClose(socket: net.Socket): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.leftover = null;
    this.fail(new Error('Connection is closed.'));
    if (this.state === 'closed') return;
    this.state = 'down';
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(this.retries++, 6));
    this.reconnectTimer = setTimeout(() => {
      if (this.state === 'down') this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  /** Rejects every command in flight or waiting to be written. */
  private fail(err: Error): void {
    const rejecters = this.rejecters;
    const from = this.head;
    const to = rejecters.length;
    const pending = rejecters.slice(from, to);
    this.resolvers.length = 0;
    this.rejecters.length = 0;
    this.deadlines.length = 0;
    this.head = 0;
    this.outbox = [];
    for (const reject of pending) reject(err);
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.leftover) {
      buf = Buffer.concat([this.leftover, chunk]);
      this.leftover = null;
    }
    let at = 0;
    while (at < buf.length) {
      let end: number;
      try {
        end = parseReply(buf, at);
      } catch (err) {
        this.log.warn(
          { err: (err as Error).message },
          'heartbeat connection: unreadable reply; reconnecting',
        );
        this.socket?.destroy();
        return;
      }
      if (end < 0) break;
      at = end;
      const resolve = this.resolvers[this.head];
      const reject = this.rejecters[this.head]!;
      if (!resolve) {
        // a reply nobody waits for: the stream is out of step
        this.log.warn('heartbeat connection: unexpected reply; reconnecting');
        this.socket?.destroy();
        return;
      }
      this.resolvers[this.head] = undefined as never;
      this.rejecters[this.head] = undefined as never;
      this.head++;
      if (this.head === this.resolvers.length) {
        this.resolvers.length = 0;
        this.rejecters.length = 0;
        this.deadlines.length = 0;
        this.head = 0;
      } else if (this.head > 4096 && this.head * 2 > this.resolvers.length) {
        this.resolvers.splice(0, this.head);
        this.rejecters.splice(0, this.head);
        this.deadlines.splice(0, this.head);
        this.head = 0;
      }
      if (parsed instanceof Error) reject(parsed);
      else resolve(parsed);
    }
    if (at < buf.length) this.leftover = Buffer.from(buf.subarray(at));
  }
}

const noop = (): void => undefined;
/** The slot of a command already failed by the sweep: its reply is dropped. */
const expired = (): void => undefined;

/** The value of the last reply parseReply read (a module slot: no result object per reply). */
let parsed: ReplyValue = null;

/** End of the line starting at `i` (index of its CR), or -1 when it has not all arrived. */
function lineEnd(buf: Buffer, i: number): number {
  const cr = buf.indexOf(CR, i);
  return cr < 0 || cr + 1 >= buf.length ? -1 : cr;
}

function intAt(buf: Buffer, from: number, to: number): number {
  let n = 0;
  let sign = 1;
  let i = from;
  if (buf[i] === 0x2d) {
    sign = -1;
    i++;
  }
  for (; i < to; i++) n = n * 10 + (buf[i]! - 0x30);
  return sign * n;
}

/** The value of the reply the last successful parseReply read. */
export function lastReply(): ReplyValue {
  return parsed;
}

/** One RESP2 reply at `i` (read it with lastReply); its end, or -1 when it has not all arrived. */
export function parseReply(buf: Buffer, i: number): number {
  const type = buf[i];
  const cr = lineEnd(buf, i + 1);
  if (cr < 0) return -1;
  switch (type) {
    case 0x2b: // +
      parsed = buf.toString('utf8', i + 1, cr);
      return cr + 2;
    case 0x2d: // -
      parsed = new Error(buf.toString('utf8', i + 1, cr));
      return cr + 2;
    case 0x3a: // :
      parsed = intAt(buf, i + 1, cr);
      return cr + 2;
    case 0x24: {
      // $
      const n = intAt(buf, i + 1, cr);
      if (n < 0) {
        parsed = null;
        return cr + 2;
      }
      const end = cr + 2 + n;
      if (end + 2 > buf.length) return -1;
      parsed = buf.toString('utf8', cr + 2, end);
      return end + 2;
    }
    case 0x2a: {
      // *
      const n = intAt(buf, i + 1, cr);
      if (n < 0) {
        parsed = null;
        return cr + 2;
      }
      const items: ReplyValue[] = new Array<ReplyValue>(n);
      let at = cr + 2;
      for (let k = 0; k < n; k++) {
        at = parseReply(buf, at);
        if (at < 0) return -1;
        items[k] = parsed;
      }
      parsed = items;
      return at;
    }
    case undefined:
      return -1;
    default:
      throw new Error(`unexpected RESP type byte ${type}`);
  }
}

/** RESP of a command given as strings (the handshake's). */
function encode(args: string[]): Buffer {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(s);
}
