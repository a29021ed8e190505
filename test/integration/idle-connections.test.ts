import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { frame, registerBody } from '../support/node-fixtures.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { JOIN_TOKEN, startTestGateway, type TestGateway } from '../support/service-harness.ts';
import { TestSocket } from '../support/ws-client.ts';

/**
 * Issue 11 defect 7: sockets that never register stayed open forever, dead peers were never
 * noticed, half-sent requests were held for Node's 60/300 s, and connections were unbounded.
 */
describe('idle and half-open connections', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway(
      uniquePrefix(),
      { redisUrl: redisUrl() },
      {
        SB_WS_REGISTER_TIMEOUT_MS: '300',
        SB_WS_PING_INTERVAL_MS: '200',
        SB_HTTP_HEADERS_TIMEOUT_MS: '400',
        SB_HTTP_REQUEST_TIMEOUT_MS: '700',
        SB_MAX_CONNECTIONS: '4',
      },
    );
  });
  afterAll(async () => {
    await gw.close();
  });

  const port = () => Number(new URL(gw.http).port);

  /** A raw TCP connection; resolves `ended` with what the server sent before closing. */
  async function rawSocket(): Promise<{ socket: Socket; ended: Promise<string> }> {
    const socket = connect(port(), '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    const ended = new Promise<string>((resolve) => socket.on('close', () => resolve(text)));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, ended };
  }

  it('closes a socket that does not register in time with 4408; a registered one stays', async () => {
    const silent = await TestSocket.open(gw.ws, JOIN_TOKEN);
    const node = await TestSocket.open(gw.ws, JOIN_TOKEN);
    node.send(frame('node_register', registerBody({ node_id: 'idle-registered' })));
    await node.nextOfType('node_register_ack');
    expect(await silent.closed).toMatchObject({ code: 4408 });
    await new Promise((r) => setTimeout(r, 600)); // pings answered by the ws client meanwhile
    expect(node.ws.readyState).toBe(WebSocket.OPEN);
    await node.close();
  });

  it('terminates a registered socket that stops answering pings', async () => {
    const ws = new WebSocket(gw.ws, { headers: { authorization: `Bearer ${JOIN_TOKEN}` }, autoPong: false });
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve) => ws.once('open', () => resolve()));
    const acked = new Promise<void>((resolve) => ws.once('message', () => resolve()));
    ws.send(frame('node_register', registerBody({ node_id: 'idle-dead-peer' })));
    await acked;
    const started = Date.now();
    expect(await closed).toBe(1006); // terminated: no close frame
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('answers 408 and closes a request whose headers never complete', async () => {
    const { socket, ended } = await rawSocket();
    socket.write('POST /v1/nodes/register HTTP/1.1\r\nHost: x\r\n');
    const started = Date.now();
    expect(await ended).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('answers 408 and closes a request whose body never completes', async () => {
    const { socket, ended } = await rawSocket();
    socket.write(
      `POST /v1/nodes/register HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${JOIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"node_id":`,
    );
    const started = Date.now();
    expect(await ended).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('drops connections beyond SB_MAX_CONNECTIONS at once, and takes new ones once below', async () => {
    const held = await Promise.all([rawSocket(), rawSocket(), rawSocket(), rawSocket()]);
    const extra = await rawSocket();
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await extra.ended).toBe('');
    held[0].socket.destroy();
    await held[0].ended;
    await new Promise((r) => setTimeout(r, 50));
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
    for (const h of held) h.socket.destroy();
  });
});
