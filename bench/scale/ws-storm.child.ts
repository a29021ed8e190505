/**
 * The scale scenario's WebSocket reconnect storm (a child process): nodes the HTTP fleet
 * registered come back over WebSocket, as the lingua fleet reconnects after a network blip —
 * every socket opened at once with the node's own token, `node_register`, and on the ack one
 * `node_heartbeat`. The sockets stay open until `close`.
 *
 * Commands (IPC): storm {url, nodes: [index, token][], concurrency} → {statuses, registerMs}
 * (statuses: `ack`, an error frame's code, `closed_<close code>`, `error_<errno>`, `http_<status>`,
 * `timeout`) · close → {afterAck}: the error frames received after the ack (the heartbeat's
 * answer: a shed heartbeat leaves its node `registering` until its next one), by code.
 */
import WebSocket from 'ws';
import { serveIpc } from '../lib/ipc.ts';
import { benchNodeId, heartbeatFrame, registerBody } from '../lib/node-messages.ts';

const ACK_TIMEOUT_MS = 60_000;
const sockets: WebSocket[] = [];
let closing = false;
const afterAck: Record<string, number> = {};

/** Connects, registers with the node token, heartbeats once on the ack; resolves with the outcome. */
function reconnect(url: string, index: number, token: string): Promise<string> {
  const id = benchNodeId(index);
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
    });
    sockets.push(ws);
    let done = false;
    const finish = (outcome: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('timeout'), ACK_TIMEOUT_MS);
    ws.on('error', (err: NodeJS.ErrnoException) => finish(`error_${err.code ?? 'ws'}`));
    ws.on('unexpected-response', (_req, res) => finish(`http_${res.statusCode}`));
    ws.on('close', (code) => {
      if (!closing) finish(`closed_${code}`);
    });
    ws.on('open', () => ws.send(JSON.stringify({ type: 'node_register', ...registerBody(id) })));
    ws.on('message', (data) => {
      let frame: { type?: unknown; code?: unknown };
      try {
        const text = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        frame = JSON.parse(text.toString('utf8')) as typeof frame;
      } catch {
        return finish('invalid_json');
      }
      if (done) {
        if (frame.type === 'error') afterAck[String(frame.code)] = (afterAck[String(frame.code)] ?? 0) + 1;
        return;
      }
      if (frame.type === 'node_register_ack') {
        ws.send(heartbeatFrame(id, index, 1_000_000 + index, Date.now()));
        finish('ack');
      } else if (frame.type === 'error') finish(String(frame.code));
    });
  });
}

serveIpc(async (cmd, msg) => {
  switch (cmd) {
    case 'storm': {
      const url = String(msg['url']);
      const nodes = msg['nodes'] as [number, string][];
      const concurrency = Number(msg['concurrency']);
      const statuses: Record<string, number> = {};
      const started = performance.now();
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < nodes.length) {
          const [index, token] = nodes[next++]!;
          const outcome = await reconnect(url, index, token);
          statuses[outcome] = (statuses[outcome] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, nodes.length) }, lane));
      return { statuses, registerMs: performance.now() - started };
    }
    case 'close':
      closing = true;
      for (const ws of sockets) ws.terminate();
      sockets.length = 0;
      return { closed: true, afterAck };
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});
