/**
 * Helpers for tests that talk to the real Redis servers started by test/setup/global-setup.ts.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

function provided(key: 'redisUrl' | 'redisClusterNodes'): string {
  const value = inject(key) as string | undefined;
  if (!value) {
    throw new Error(
      `inject('${key}') is empty: the Redis globalSetup did not run for this test run ` +
        `(it is skipped when only the 'unit' project is selected; unit tests must not need Redis).`,
    );
  }
  return value;
}

/** `redis://127.0.0.1:<port>` of the shared standalone server. */
export function redisUrl(): string {
  return provided('redisUrl');
}

/** Cluster seeds, `"127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"` (the REDIS_CLUSTER_NODES format). */
export function clusterNodes(): string {
  return provided('redisClusterNodes');
}

/** The cluster seeds as `{ host, port }[]`, ready for `new Cluster(...)`. */
export function clusterSeedNodes(): { host: string; port: number }[] {
  return clusterNodes()
    .split(',')
    .map((seed) => {
      const i = seed.lastIndexOf(':');
      return { host: seed.slice(0, i), port: Number(seed.slice(i + 1)) };
    });
}

/**
 * A key prefix unique to this call: `t<12 hex>` or `t<12 hex>-<name>` (name reduced to
 * `[A-Za-z0-9_-]`, at most 32 chars). No trailing separator and no `{hash tag}`, so callers decide.
 */
export function uniquePrefix(name?: string): string {
  const id = `t${randomBytes(6).toString('hex')}`;
  const clean = (name ?? '').replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 32);
  return clean ? `${id}-${clean}` : id;
}

export interface WaitForOptions {
  /** Default 5000. */
  timeoutMs?: number;
  /** Default 50. */
  intervalMs?: number;
  /** Prepended to the timeout error. */
  message?: string;
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Calls `fn` every `intervalMs` until it returns something other than `false` without throwing
 * (so both predicates and `expect(...)`-style callbacks work), and returns that value. At the
 * deadline, throws an error carrying the last returned value or the last thrown error (as `cause`).
 * A call that hangs is abandoned at the deadline.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<Exclude<Awaited<T>, false>> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  const TIMED_OUT = Symbol('timed out');
  let last: { kind: 'value'; value: unknown } | { kind: 'error'; error: unknown };
  let attempts = 0;

  for (;;) {
    attempts++;
    // The last attempt runs at the deadline; give each call at least one interval to answer.
    const callBudget = Math.max(deadline - Date.now(), intervalMs);
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        Promise.resolve().then(fn),
        new Promise<typeof TIMED_OUT>(
          (resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), callBudget)),
        ),
      ]);
      if (result === TIMED_OUT) {
        last = { kind: 'error', error: new Error(`call still pending after ${callBudget} ms`) };
      } else if (result !== false) {
        return result as Exclude<Awaited<T>, false>;
      } else {
        last = { kind: 'value', value: result };
      }
    } catch (error) {
      last = { kind: 'error', error };
    } finally {
      clearTimeout(timer);
    }

    const now = Date.now();
    if (now >= deadline) {
      const prefix = opts.message ? `${opts.message}: ` : '';
      const lastText =
        last.kind === 'error' ? `last error: ${describe(last.error)}` : `last value: ${describe(last.value)}`;
      throw new Error(
        `${prefix}waitFor timed out after ${timeoutMs} ms (${attempts} attempts); ${lastText}`,
        {
          cause: last.kind === 'error' ? last.error : undefined,
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, deadline - now)));
  }
}
