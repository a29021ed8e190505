import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../services/gateway/main.ts';
import { startSelector, type SelectorService } from '../../services/selector/main.ts';
import { captureLogger, errorLines } from '../support/log-capture.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import { API_KEY, JOIN_TOKEN, testConfig } from '../support/service-harness.ts';

/** Issue 11 defect 9: a client that went away mid-upload was logged as a server error. */
describe('aborted uploads', () => {
  const gatewayLog = captureLogger();
  const selectorLog = captureLogger();
  let gateway: Gateway;
  let selector: SelectorService;

  beforeAll(async () => {
    const config = testConfig(uniquePrefix('aborted'), { redisUrl: redisUrl() });
    gateway = await startGateway(config, gatewayLog.log);
    selector = await startSelector(config, selectorLog.log);
  });
  afterAll(async () => {
    await gateway.close();
    await selector.close();
  });

  /** Sends the headers and half the declared body, then drops the connection. */
  async function abort(port: number, path: string, token: string): Promise<void> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"node_id":"a`,
    );
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
  }

  it('is logged at debug, not as an error, on every route that reads a body', async () => {
    for (const path of ['/v1/nodes/register', '/v1/nodes/n-1/heartbeat', '/v1/nodes/n-1/jobs/j-1/ack'])
      await abort(gateway.port, path, JOIN_TOKEN);
    await abort(selector.port, '/v1/jobs', API_KEY);
    const aborted = (lines: Record<string, unknown>[]) =>
      lines.filter((l) => l['msg'] === 'client aborted the upload');
    await waitFor(() => aborted(gatewayLog.lines).length === 3 && aborted(selectorLog.lines).length === 1);
    expect(aborted(gatewayLog.lines).every((l) => l['level'] === 20)).toBe(true);
    expect(errorLines(gatewayLog.lines)).toEqual([]);
    expect(errorLines(selectorLog.lines)).toEqual([]);
  });
});
