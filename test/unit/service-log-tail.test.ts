import { describe, expect, it } from 'vitest';
import { failureReason, formatStartFailure, LogTail } from '../../scripts/lib/service-log-tail.ts';

const entry = (level: number, msg: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ level, time: '2026-01-01T00:00:00.000Z', service: 'gateway', pid: 1, ...extra, msg });

const UNREACHABLE =
  'cannot reach Redis at redis://127.0.0.1:1 (ECONNREFUSED): start redis-server or set REDIS_URL / REDIS_CLUSTER_NODES to a reachable Redis';

describe('npm start: why a service did not start', () => {
  it('keeps the last lines, stdout and stderr in arrival order', () => {
    const tail = new LogTail(20);
    for (let i = 0; i < 25; i++) tail.push(`line ${i}`);
    tail.push('   ');
    expect(tail.lines()).toHaveLength(20);
    expect(tail.lines()[0]).toBe('line 5');
    expect(tail.lines().at(-1)).toBe('line 24');
  });

  it('the reason is the last error line, else the last warning', () => {
    expect(
      failureReason([
        entry(40, 'SB_AUTH=off: no token or API key is checked.'),
        entry(50, UNREACHABLE, { component: 'redis', code: 'ECONNREFUSED' }),
        entry(30, 'something else'),
      ]),
    ).toBe(UNREACHABLE);
    expect(failureReason([entry(30, 'starting'), entry(40, 'a warning'), entry(30, 'more')])).toBe(
      'a warning',
    );
  });

  it('a fatal entry gives its message and its error’s, on one line', () => {
    expect(
      failureReason([
        entry(60, 'gateway failed to start', {
          err: { type: 'Error', message: 'listen EADDRINUSE: address already in use 0.0.0.0:8080' },
        }),
      ]),
    ).toBe('gateway failed to start: listen EADDRINUSE: address already in use 0.0.0.0:8080');
    expect(
      failureReason([
        entry(
          60,
          'invalid configuration:\n  - SB_SHARDS: too small\n  - SB_API_KEY: required by the selector',
        ),
      ]),
    ).toBe('invalid configuration: SB_SHARDS: too small; SB_API_KEY: required by the selector');
  });

  it('without a log entry, the head of a stack trace or the last line', () => {
    const trace = [
      'node:internal/modules/run_main:123',
      'SyntaxError: Unexpected token',
      '    at compileSourceTextModule (node:internal/modules/esm/utils:338:16)',
    ];
    expect(failureReason(trace)).toBe('SyntaxError: Unexpected token');
    expect(failureReason(['hello', 'world'])).toBe('world');
    expect(failureReason([entry(30, 'listening'), entry(30, 'shutting down', { signal: 'SIGTERM' })])).toBe(
      'shutting down',
    );
    expect(failureReason([])).toBe('(no output)');
  });

  it('formats the reason and the last lines', () => {
    const lines = [entry(40, 'a warning'), entry(50, UNREACHABLE)];
    expect(formatStartFailure('gateway-1', 'did not start within 30000 ms', lines)).toBe(
      [
        `gateway-1 did not start within 30000 ms: ${UNREACHABLE}`,
        '  last 2 log lines of gateway-1:',
        `    ${lines[0]}`,
        `    ${lines[1]}`,
      ].join('\n'),
    );
    expect(formatStartFailure('worker', 'exited with code 1 before it was ready', [])).toBe(
      'worker exited with code 1 before it was ready: (no output)',
    );
  });
});
