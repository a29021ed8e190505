/**
 * The scale scenario's WebSocket reconnect storm (a child process): nodes the HTTP fleet
 * registered come back over WebSocket, as the lingua fleet reconnects after a network blip —
 * every socket opened at once with the node's own token, `node_register`, and on the ack a
 * `node_heartbeat`, then one every 15 s. As the lingua client: error frames are ignored (counted),
 * and a socket that closes or fails before its ack is opened again 5 s later, until the ack or
 * 60 s. The sockets stay open until `close`.
 *
 * Commands (IPC): storm {url, nodes: [index, token][], concurrency} → {statuses, registerMs,
 * shed, errors} (statuses: each node's end: `ack`, or its last attempt's `closed_<close code>`,
 * `error_<errno>`, `http_<status>`; shed: every attempt that ended without an ack, by the same
 * names; errors: error frames before the ack, by code) · close → {afterAck}: the error frames
 * received after the ack (a shed heartbeat leaves its node `registering` until its next one).
 */
import WebSocket from 'ws';
import { serveIpc } from '../lib/ipc.ts';
import { benchNodeId, heartbeatFrame, registerBody } from '../lib/node-messages.ts';

/** The lingua client's reconnect delay and heartbeat interval. */
const RECONNECT_MS = 5_000;
const HEARTBEAT_MS = 15_000;
/** How long a node keeps reconnecting for its ack. */
const ACK_DEADLINE_MS = 60_000;
const sockets = new Set<WebSocket>();
const timers = new Set<NodeJS.Timeout>();
let closing = false;
const afterAck: Record<string, number> = {};
const count = (tally: Record<string, number>, key: string) => (tally[key] = (tally[key] ?? 0) + 1);

/** One node until its ack (then it heartbeats on) or the deadline; resolves with its end. */
function reconnect(
  url: string,
  index: number,
  token: string,
  tallies: { shed: Record<string, number>; errors: Record<string, number> },
): Promise<string> {
  const id = benchNodeId(index);
  const deadline = performance.now() + ACK_DEADLINE_MS;
  let k = 0;
  return new Promise((resolve) => {
    const attempt = (): void => {
      const ws = new WebSocket(url, {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      sockets.add(ws);
      let ended = false;
      let acked = false;
      /** This attempt ended without an ack: again in 5 s, unless past the deadline. */
      const failed = (outcome: string): void => {
        if (ended || acked || closing) return;
        ended = true;
        count(tallies.shed, outcome);
        ws.terminate();
        sockets.delete(ws);
        if (performance.now() + RECONNECT_MS > deadline) return resolve(outcome);
        const t = setTimeout(() => (timers.delete(t), attempt()), RECONNECT_MS);
        timers.add(t);
      };
      const beat = (): void => {
        if (ws.readyState === WebSocket.OPEN) ws.send(heartbeatFrame(id, index, 1_000_000 + k++, Date.now()));
      };
      ws.on('error', (err: NodeJS.ErrnoException) => failed(`error_${err.code ?? 'ws'}`));
      ws.on('unexpected-response', (_req, res) => failed(`http_${res.statusCode}`));
      ws.on('close', (code) => failed(`closed_${code}`));
      ws.on('open', () => ws.send(JSON.stringify({ type: 'node_register', ...registerBody(id) })));
      ws.on('message', (data) => {
        let frame: { type?: unknown; code?: unknown };
        try {
          const text = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
          frame = JSON.parse(text.toString('utf8')) as typeof frame;
        } catch {
          return failed('invalid_json');
        }
        if (frame.type === 'error') return void count(acked ? afterAck : tallies.errors, String(frame.code));
        if (frame.type !== 'node_register_ack' || acked) return;
        acked = true;
        beat();
        const t = setInterval(beat, HEARTBEAT_MS);
        timers.add(t);
        resolve('ack');
      });
    };
    attempt();
  });
}

serveIpc(async (cmd, msg) => {
  switch (cmd) {
    case 'storm': {
      const url = String(msg['url']);
      const nodes = msg['nodes'] as [number, string][];
      const concurrency = Number(msg['concurrency']);
      const statuses: Record<string, number> = {};
      const tallies = { shed: {}, errors: {} };
      const started = performance.now();
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < nodes.length) {
          const [index, token] = nodes[next++]!;
          count(statuses, await reconnect(url, index, token, tallies));
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, nodes.length) }, lane));
      return { statuses, registerMs: performance.now() - started, ...tallies };
    }
    case 'close':
      closing = true;
      for (const t of timers) clearTimeout(t);
      for (const ws of sockets) ws.terminate();
      sockets.clear();
      return { closed: true, afterAck };
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});
