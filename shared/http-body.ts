import type { IncomingMessage, ServerResponse } from 'node:http';
import { SwitchboardError, httpErrorBody } from './errors.ts';
import type { Logger } from './logger.ts';
import { parseJsonMessage } from './protocol/json-message.ts';

/**
 * Reads and parses a JSON body of at most `limit` bytes (413 beyond, 400 when not JSON). A client
 * that goes away mid-upload is not a server error: it is logged at debug (with `log`) and the
 * request fails as INVALID_MESSAGE, which no one will read.
 */
export function readJsonBody(req: IncomingMessage, limit: number, log?: Logger): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      reject(tooLarge(declared, limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(size, limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > limit) return;
      try {
        resolve(parseJsonMessage(Buffer.concat(chunks, size).toString('utf8'), 'body'));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    req.on('error', (err: Error) => {
      log?.debug({ err: err.message, received: size }, 'client aborted the upload');
      reject(
        new SwitchboardError(
          'INVALID_MESSAGE',
          'body: the client closed the connection before sending it whole',
        ),
      );
    });
  });
}

function tooLarge(size: number, limit: number): SwitchboardError {
  return new SwitchboardError(
    'INVALID_MESSAGE',
    `body of ${size} bytes exceeds the limit of ${limit} (SB_MAX_MESSAGE_BYTES)`,
    { status: 413 },
  );
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: SwitchboardError): void {
  if (error.retryAfterS !== undefined) res.setHeader('retry-after', String(error.retryAfterS));
  sendJson(res, error.status, httpErrorBody(error));
}
