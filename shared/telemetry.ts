import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';
import { BUILD_INFO } from './build-info.ts';

/**
 * OpenTelemetry for every service, from the standard OTEL_* environment: tracing is on when
 * OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and not
 * OTEL_SDK_DISABLED=true / OTEL_TRACES_EXPORTER=none). Started by shared/telemetry-preload.ts
 * BEFORE the app is imported (the ESM hook must see ioredis and express load); off, nothing
 * of the SDK is even loaded and the spans below are the API's no-ops.
 */

/** Modules the ESM hook wraps for instrumentation; every other import passes untouched. */
export const INSTRUMENTED_MODULES = ['ioredis', 'express', 'http', 'node:http', 'https', 'node:https'];

/** Incoming requests that never get a span: probes and scrapes. */
const UNTRACED_PATHS = /^\/(?:healthz|readyz|metrics)(?:[/?]|$)/;

const STATE = Symbol.for('switchboard.telemetry');
interface TelemetryState {
  serviceName: string;
  shutdown: () => Promise<void>;
}
type WithState = typeof globalThis & { [STATE]?: TelemetryState };

export const tracer = trace.getTracer('switchboard');

export function telemetryConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return false;
  if (env['OTEL_TRACES_EXPORTER']?.split(',').some((e) => e.trim() === 'none')) return false;
  return Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
}

/** True once the SDK runs in this process: hot paths skip even the no-op span objects otherwise. */
export function tracingEnabled(): boolean {
  return (globalThis as WithState)[STATE] !== undefined;
}

/** `switchboard-<name>` for `services/<name>/main.ts`, else `switchboard`. */
export function serviceNameOf(entry: string | undefined): string {
  const match = entry ? /services[\\/]([^\\/]+)[\\/]main\.[cm]?[jt]s$/.exec(entry) : null;
  return match ? `switchboard-${match[1]}` : 'switchboard';
}

/**
 * Starts the NodeSDK once per process: OTLP/HTTP (JSON) trace exporter behind a batch
 * processor (OTEL_BSP_*), http + express + ioredis instrumentation, W3C trace context.
 * service.name is OTEL_SERVICE_NAME, else `serviceName`. Traces only: metrics stay Prometheus.
 */
export async function startTelemetry(
  serviceName: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  const g = globalThis as WithState;
  if (g[STATE]) return true;
  if (!telemetryConfigured(env)) return false;
  const [sdkNode, exporter, http, express, ioredis] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-ioredis'),
  ]);
  const namedByEnv =
    Boolean(env['OTEL_SERVICE_NAME']) ||
    /(?:^|,)\s*service\.name=/.test(env['OTEL_RESOURCE_ATTRIBUTES'] ?? '');
  // service.version on the resource: the SDK's environment detector reads it from here
  process.env['OTEL_RESOURCE_ATTRIBUTES'] = withServiceVersion(
    env['OTEL_RESOURCE_ATTRIBUTES'],
    BUILD_INFO.version,
  );
  const sdk = new sdkNode.NodeSDK({
    ...(namedByEnv ? {} : { serviceName }),
    traceExporter: new exporter.OTLPTraceExporter(),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new http.HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.test(req.url ?? ''),
      }),
      new express.ExpressInstrumentation({ ignoreLayersType: [express.ExpressLayerType.MIDDLEWARE] }),
      // command names only: EVALSHA arguments carry job payloads and capability blobs
      new ioredis.IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (cmd) => cmd }),
    ],
  });
  sdk.start();
  g[STATE] = { serviceName, shutdown: () => sdk.shutdown() };
  return true;
}

/** Flushes and stops the SDK (a no-op when tracing is off); gives up after `timeoutMs`. */
export async function shutdownTelemetry(timeoutMs = 3000): Promise<void> {
  const g = globalThis as WithState;
  const state = g[STATE];
  if (!state) return;
  delete g[STATE];
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    state.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

/**
 * `OTEL_RESOURCE_ATTRIBUTES` with `service.version=<version>` added, unless it names one already
 * (the operator's word wins).
 */
export function withServiceVersion(attributes: string | undefined, version: string): string {
  const current = attributes?.trim() ?? '';
  if (/(?:^|,)\s*service\.version=/.test(current)) return current;
  const entry = `service.version=${encodeURIComponent(version)}`;
  return current ? `${current},${entry}` : entry;
}

/**
 * Runs `fn` inside a new active span (child of `parent`, default the active context); an
 * exception marks the span ERROR and is rethrown; the span always ends. `kind`: SERVER where a
 * request enters, CONSUMER where a node message or a queued job does, else INTERNAL.
 */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  parent: Context = context.active(),
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes, kind }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Runs synchronous `fn` (a step without I/O, such as the in-memory choice) in a child span of the
 * active context, so a trace shows its own duration beside the steps that wait on Redis.
 */
export function stepSpan<T>(name: string, fn: (span: Span) => T, attributes: Attributes = {}): T {
  const span = tracer.startSpan(name, { attributes });
  try {
    return fn(span);
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

export function failSpan(span: Span, err: unknown): void {
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

const TRACEPARENT = /^([\da-f]{2})-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})(?:-.*)?$/;
const TRACE_ID = /^[\da-f]{32}$/;

/** The span context of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), or null. */
export function parseTraceparent(value: unknown): SpanContext | null {
  const header = Array.isArray(value) ? (value[0] as unknown) : value;
  if (typeof header !== 'string') return null;
  const m = TRACEPARENT.exec(header.trim());
  if (!m || m[1] === 'ff' || (m[1] === '00' && header.trim().length !== 55)) return null;
  const ctx: SpanContext = {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: parseInt(m[4]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return trace.isSpanContextValid(ctx) ? ctx : null;
}

/** The W3C `traceparent` of a span, or null when it has no valid context (tracing off). */
export function traceparentOf(span: Span | undefined): string | null {
  const ctx = span?.spanContext();
  if (!ctx || !trace.isSpanContextValid(ctx)) return null;
  return `00-${ctx.traceId}-${ctx.spanId}-0${(ctx.traceFlags & TraceFlags.SAMPLED).toString(16)}`;
}

/**
 * The parent context of work a node reports on (job_ack, job_result): the `traceparent` the
 * job_assign carried, echoed back; else, when the node echoes only `trace_id` (every lingua
 * node does), `placement` — the job's placement span as the job record keeps it — if it is of
 * that trace; else a parent id derived from the trace id, which keeps the span in the job's
 * trace under a parent that exists nowhere (the last resort: a record without a traceparent).
 */
export function remoteParent(traceparent: unknown, traceId: unknown, placement?: string | null): Context {
  const parsed = parseTraceparent(traceparent);
  if (parsed) return trace.setSpanContext(ROOT_CONTEXT, parsed);
  const stored = parseTraceparent(placement);
  if (stored && (traceId === undefined || traceId === null || stored.traceId === traceId))
    return trace.setSpanContext(ROOT_CONTEXT, stored);
  if (typeof traceId !== 'string' || !TRACE_ID.test(traceId)) return ROOT_CONTEXT;
  const ctx: SpanContext = {
    traceId,
    spanId: traceId.slice(16),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  };
  return trace.isSpanContextValid(ctx) ? trace.setSpanContext(ROOT_CONTEXT, ctx) : ROOT_CONTEXT;
}

/**
 * `trace_id` and `span_id` of the active span, for every log line written inside one (the pino
 * mixin of shared/logger.ts): a log line leads to its trace. Empty when none is active or tracing
 * is off.
 */
export function traceLogFields(ctx: Context = context.active()): { trace_id?: string; span_id?: string } {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

export { SpanKind };
