import net from 'node:net';
import { HOST } from './local-ports.ts';

/** Readiness probe: raw RESP over a socket, so nothing retries or logs behind our back. */

export interface ProbeResult {
  pong: boolean;
  processId: number | null;
}

/** Sends `PING` and `INFO server` to 127.0.0.1:`port`; never rejects (a failure is `pong: false`). */
export function probe(port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let buf = Buffer.alloc(0);
    const sock = net.connect({ host: HOST, port });
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(result);
    };
    const fail = (): void => finish({ pong: false, processId: null });
    const timer = setTimeout(fail, timeoutMs);
    sock.on('connect', () => sock.write('PING\r\nINFO server\r\n'));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const firstEnd = buf.indexOf('\r\n');
      if (firstEnd < 0) return;
      const first = buf.subarray(0, firstEnd).toString();
      if (first !== '+PONG') return fail(); // e.g. -LOADING
      const headerEnd = buf.indexOf('\r\n', firstEnd + 2);
      if (headerEnd < 0) return;
      const header = buf.subarray(firstEnd + 2, headerEnd).toString();
      if (!header.startsWith('$')) return fail();
      const len = Number(header.slice(1));
      if (buf.length < headerEnd + 2 + len) return;
      const info = buf.subarray(headerEnd + 2, headerEnd + 2 + len).toString();
      const m = /^process_id:(\d+)\r?$/m.exec(info);
      finish({ pong: true, processId: m?.[1] ? Number(m[1]) : null });
    });
    sock.on('error', fail);
    sock.on('close', fail);
  });
}
