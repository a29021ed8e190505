import { request } from 'node:http';

/**
 * One HTTP request with the path sent byte for byte (fetch would normalise it), for malformed
 * percent-escapes. Resolves with the status and the parsed JSON body.
 */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  options: { body?: string; token?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          'content-type': 'application/json',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
          } catch {
            reject(new Error(`not JSON (status ${res.statusCode}): ${text.slice(0, 200)}`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(options.body ?? (method === 'POST' ? '{}' : undefined));
  });
}
