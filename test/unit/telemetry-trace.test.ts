import { AsyncLocalStorage } from 'node:async_hooks';
import { context, ROOT_CONTEXT, trace, type Context, type ContextManager } from '@opentelemetry/api';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggerOptions } from '../../shared/logger.ts';
import { remoteParent, traceLogFields, withServiceVersion } from '../../shared/telemetry.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const PLACEMENT = `00-${TRACE}-a1b2c3d4e5f60718-01`;

/**
 * The SDK's context manager does what this one does (AsyncLocalStorage): without one, the API
 * keeps no active context and a log line could not know its span.
 */
class StorageContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

describe('the job trace without an echoed traceparent', () => {
  it("parents a node's report under the placement span the job record keeps", () => {
    // the lingua client echoes trace_id only: the stored placement span is the parent
    expect(trace.getSpanContext(remoteParent(undefined, TRACE, PLACEMENT))).toMatchObject({
      traceId: TRACE,
      spanId: 'a1b2c3d4e5f60718',
    });
    // an echoed traceparent still wins
    expect(trace.getSpanContext(remoteParent(`00-${TRACE}-${SPAN}-01`, TRACE, PLACEMENT))?.spanId).toBe(SPAN);
    // a record of another trace is not this one's parent: the trace id alone, as before
    const other = `00-${'1'.repeat(32)}-a1b2c3d4e5f60718-01`;
    const fallback = trace.getSpanContext(remoteParent(undefined, TRACE, other));
    expect(fallback?.traceId).toBe(TRACE);
    expect(fallback?.spanId).not.toBe('a1b2c3d4e5f60718');
    expect(trace.getSpanContext(remoteParent(undefined, TRACE, 'garbage'))?.traceId).toBe(TRACE);
  });
});

describe('service.version on the resource', () => {
  it('is added to OTEL_RESOURCE_ATTRIBUTES unless the operator set one', () => {
    expect(withServiceVersion(undefined, '0.1.0')).toBe('service.version=0.1.0');
    expect(withServiceVersion('service.instance.id=gateway-1', '0.1.0')).toBe(
      'service.instance.id=gateway-1,service.version=0.1.0',
    );
    expect(withServiceVersion('a=b, service.version=9', '0.1.0')).toBe('a=b, service.version=9');
  });
});

describe('log lines carry the active span', () => {
  const manager = new StorageContextManager();
  beforeAll(() => void context.setGlobalContextManager(manager));
  afterAll(() => context.disable());

  it('trace_id and span_id inside a span, nothing outside', () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino(loggerOptions('test', 'info'), {
      write: (text: string) => void lines.push(JSON.parse(text) as Record<string, unknown>),
    });
    const inside = trace.setSpanContext(ROOT_CONTEXT, { traceId: TRACE, spanId: SPAN, traceFlags: 1 });
    context.with(inside, () => log.child({ component: 'c' }).info('in a span'));
    log.info('outside');
    expect(lines[0]).toMatchObject({ msg: 'in a span', trace_id: TRACE, span_id: SPAN, service: 'test' });
    expect(lines[1]).not.toHaveProperty('trace_id');
    expect(traceLogFields(ROOT_CONTEXT)).toEqual({});
  });
});
