import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, SwitchboardError, toSwitchboardError } from '../../shared/errors.ts';

describe('error catalog', () => {
  it('holds every error code PROTOCOL.md names', () => {
    const protocol = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const line = protocol.split('\n').find((l) => l.includes('`error`: `{code, message}` — codes:'))!;
    const codes = [...line.matchAll(/`([A-Z_]{4,})`/g)].map((m) => m[1]!);
    expect(codes.length).toBeGreaterThanOrEqual(8);
    for (const code of [...codes, 'NO_AVAILABLE_NODE']) expect(ERROR_CATALOG, code).toHaveProperty(code);
  });

  it('maps Redis connectivity failures to SCHEDULER_DEPENDENCY_DOWN with Retry-After, anything else to INTERNAL', () => {
    const down = toSwitchboardError(
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    );
    expect(down).toMatchObject({ code: 'SCHEDULER_DEPENDENCY_DOWN', status: 503, retryAfterS: 1 });
    expect(toSwitchboardError(new Error('boom')).code).toBe('INTERNAL');
    const own = new SwitchboardError('UNAUTHORIZED', 'x', { status: 403 });
    expect(toSwitchboardError(own)).toBe(own);
  });
});
