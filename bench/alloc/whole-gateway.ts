/**
 * The whole gateway's heap bytes per WebSocket heartbeat, in one process and independent of the
 * machine's load (bench/alloc.ts): a real gateway (startGateway) on its own Redis, 16 nodes
 * registered over `ws`, then each node's heartbeats written as prebuilt client frames (masked
 * with a zero key) on the raw TCP socket, all at once, followed by one invalid frame whose
 * error reply says that the socket's frames were all handled (a socket handles its frames in
 * order). Everything the gateway does per frame is inside: node:net's reads, ws's frame
 * handling, NodeSocket's queue, the service path, the Redis round trip, the metrics.
 */
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { startGateway } from '../../services/gateway/main.ts';
import { loadConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { heartbeatFrame, registerBody } from '../lib/node-messages.ts';

const NODES = 16;

/** A client→server text frame of `payload`, masked with the zero key (payload unchanged). */
function clientFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const head =
    n < 126
      ? Buffer.from([0x81, 0x80 | n, 0, 0, 0, 0])
      : Buffer.from([0x81, 0x80 | 126, n >> 8, n & 0xff, 0, 0, 0, 0]);
  return Buffer.concat([head, payload]);
}

export async function wholeGateway(redisUrl: string, perNode: number, runs: number) {
  const config = loadConfig(
    {
      REDIS_URL: redisUrl,
      SB_AUTH: 'off',
      PORT: '0',
      SB_PREFIX: 'allocgw',
      SB_WS_RATE_LIMIT: '1000000',
      SB_WS_MAX_QUEUED: String(perNode + 16),
      SB_WS_PING_INTERVAL_MS: '0',
    },
    'gateway',
  );
  const gateway = await startGateway(config, createLogger('alloc-gateway', 'silent'));
  const url = `ws://127.0.0.1:${gateway.port}/ws/node`;
  const nodes: { id: string; socket: Socket; replies: (() => void)[] }[] = [];
  for (let i = 0; i < NODES; i++) {
    const id = `alloc-gw-${i}`;
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'node_register', ...registerBody(id) }));
    await new Promise((resolve) => ws.once('message', resolve));
    // from here on the raw socket: frames written as bytes, replies only counted
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.removeAllListeners('data');
    const node = { id, socket, replies: [] as (() => void)[] };
    socket.on('data', () => node.replies.shift()?.());
    nodes.push(node);
  }
  const bad = clientFrame(Buffer.from('{"type":"node_heartbeat"}'));
  let ts = Date.now();
  /** Each node's next `perNode` heartbeats and the closing bad frame, as one buffer per node. */
  const batch = () =>
    nodes.map((node, i) =>
      Buffer.concat([
        ...Array.from({ length: perNode }, (_, k) =>
          clientFrame(Buffer.from(heartbeatFrame(node.id, i, k, ++ts))),
        ),
        bad,
      ]),
    );
  // every batch the measurement may use, built before it (timestamps rising: none is stale);
  // the first heartbeat of each node, sent here, takes the full path and primes its socket's memo
  const batches = Array.from({ length: runs + 1 }, batch);
  const send = async (buffers: Buffer[]) => {
    await Promise.all(
      nodes.map(
        (node, i) =>
          new Promise<void>((resolve) => {
            node.replies.push(resolve);
            node.socket.write(buffers[i]!);
          }),
      ),
    );
  };
  await send(batches.pop()!);
  return {
    heartbeats: NODES * perNode,
    /** One measured call: a prepared batch sent, each socket's error reply received. */
    run: (): Promise<void> => {
      const next = batches.pop();
      if (!next) throw new Error('out of prepared batches');
      return send(next);
    },
    close: async () => {
      for (const node of nodes) node.socket.destroy();
      await gateway.close();
    },
  };
}
