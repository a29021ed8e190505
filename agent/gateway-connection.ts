import WebSocket, { type RawData } from 'ws';
import type { AgentLog } from './agent-log.ts';
import { backoffDelay, type TimerHandle, type Timers } from './timers.ts';

export const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_TOO_BIG = 1009;
const CLOSE_FLOODING = 4429;

export interface ConnectionStats {
  /** Sockets opened. */
  connects: number;
  /** Connection attempts that failed before opening (refused, HTTP error, timeout). */
  connectFailures: number;
  disconnects: number;
  framesSent: number;
  framesReceived: number;
}

export interface GatewayConnectionDeps {
  urls: string[];
  /** The bearer token for the next upgrade (undefined: none). */
  token(): string | undefined;
  connectTimeoutMs: number;
  backoff: { baseMs: number; maxMs: number };
  timers: Timers;
  random: () => number;
  log: AgentLog;
  stats: ConnectionStats;
  /** The upgrade was refused with 401. */
  onUnauthorized(): void;
  onOpen(url: string): void;
  onText(text: string): void;
  onPong(): void;
  /** The socket is gone (`wasOpen` false: it never opened); a reconnect is already scheduled unless closed for good. */
  onClose(info: { url: string; code: number; reason: string; wasOpen: boolean }): void;
}

/**
 * The transport of one agent: one WebSocket at a time to the gateway URLs in turn, reconnecting
 * after every close with exponential backoff and full jitter (reset by `resetBackoff()` once the
 * node is registered), until `closeForGood()`.
 */
export class GatewayConnection {
  private ws: WebSocket | null = null;
  private index = -1;
  private attempt = 0;
  private opened = false;
  private final = false;
  private reconnectTimer: TimerHandle | null = null;
  /** Frames sent on the current socket. */
  sentOnSocket = 0;
  url = '';

  constructor(private readonly deps: GatewayConnectionDeps) {}

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** A socket exists (connecting or open). */
  get active(): boolean {
    return this.ws !== null;
  }

  /** Opens a socket to the next URL. */
  connect(): void {
    this.reconnectTimer = null;
    if (this.final) return;
    const urls = this.deps.urls;
    this.index = (this.index + 1) % urls.length;
    this.url = urls[this.index]!;
    this.opened = false;
    this.sentOnSocket = 0;
    this.deps.log.debug({ url: this.url }, 'connecting');
    const token = this.deps.token();
    const ws = new WebSocket(this.url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      handshakeTimeout: this.deps.connectTimeoutMs,
      perMessageDeflate: false,
    });
    this.ws = ws;
    ws.on('open', () => {
      if (ws !== this.ws) return;
      this.opened = true;
      this.deps.stats.connects++;
      this.deps.onOpen(this.url);
    });
    ws.on('message', (data, isBinary) => {
      if (ws !== this.ws) return;
      this.deps.stats.framesReceived++;
      if (isBinary) this.deps.log.warn({}, 'ignoring a binary frame from the gateway');
      else this.deps.onText(textOf(data));
    });
    ws.on('pong', () => {
      if (ws === this.ws) this.deps.onPong();
    });
    ws.on('error', (err) => this.onError(ws, err));
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
  }

  /** Sends on the open socket; false when there is none. */
  send(text: string): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(text);
    this.sentOnSocket++;
    this.deps.stats.framesSent++;
    return true;
  }

  ping(): void {
    if (this.open) this.ws!.ping();
  }

  /** Drops the socket at once (dead or hopeless); a reconnect follows. */
  terminate(): void {
    this.ws?.terminate();
  }

  /** Closes the socket cleanly; a reconnect follows. */
  close(code: number, reason: string): void {
    this.ws?.close(code, reason);
  }

  /** The next backoff delay (also used for retrying a registration on the same socket). */
  nextBackoff(): number {
    const { baseMs, maxMs } = this.deps.backoff;
    return backoffDelay(this.attempt++, baseMs, maxMs, this.deps.random);
  }

  resetBackoff(): void {
    this.attempt = 0;
  }

  /** Closes with 1000 and never reconnects; resolves once the socket is closed. */
  async closeForGood(reason: string): Promise<void> {
    this.final = true;
    this.reconnectTimer?.cancel();
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close(CLOSE_NORMAL, reason);
    const timer = this.deps.timers.after(2_000, () => ws.terminate());
    await closed;
    timer.cancel();
  }

  private onError(ws: WebSocket, err: Error): void {
    if (ws !== this.ws) return;
    if (!this.opened) this.deps.stats.connectFailures++;
    // ws reports a refused upgrade as "Unexpected server response: <status>"
    if (/Unexpected server response: 401\b/.test(err.message)) this.deps.onUnauthorized();
    this.deps.log.warn({ url: this.url, err: err.message }, 'socket error');
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = null;
    const wasOpen = this.opened;
    if (wasOpen) this.deps.stats.disconnects++;
    if (!this.final) {
      if (code === CLOSE_FLOODING) this.attempt = Math.max(this.attempt, 4);
      const delay = this.nextBackoff();
      const log = this.deps.log;
      const fields = { url: this.url, code, reason, retryInMs: delay };
      if (code === CLOSE_TOO_BIG) log.error(fields, 'gateway closed: a frame was too big');
      else if (code === CLOSE_FLOODING) log.warn(fields, 'gateway closed: too many frames');
      else if (code === CLOSE_GOING_AWAY) log.info(fields, 'gateway going away; reconnecting');
      else if (wasOpen) log.warn(fields, 'disconnected; reconnecting');
      else log.debug(fields, 'connect failed; retrying');
      this.reconnectTimer = this.deps.timers.after(delay, () => this.connect());
    }
    this.deps.onClose({ url: this.url, code, reason, wasOpen });
  }
}

function textOf(data: RawData): string {
  const buf = Array.isArray(data)
    ? Buffer.concat(data)
    : data instanceof ArrayBuffer
      ? Buffer.from(data)
      : data;
  return buf.toString('utf8');
}
